"""Forms of the images pages: search, bulk tag (a tag or a repository prefix), import."""

from __future__ import annotations

import re
from typing import Any

from django import forms

from containers_app.forms.parsing import (
    REFERENCE,
    REPOSITORY_PREFIX,
)


class ImageFilterForm(forms.Form):
    q = forms.CharField(max_length=200, required=False)
    page = forms.IntegerField(min_value=1, required=False)


class BulkTagForm(forms.Form):
    MODES = (
        ("tag", "Add this tag to every selected image"),
        ("prefix", "Put every selected image under this repository prefix"),
    )

    mode = forms.ChoiceField(choices=MODES, initial="tag")
    value = forms.CharField(
        max_length=255, help_text="a tag such as v2, or a prefix such as registry.local:5000/team"
    )
    ids = forms.CharField(required=False, widget=forms.MultipleHiddenInput)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.id_list: list[str] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        self.id_list = [i.strip() for i in raw if i.strip()]
        if not self.id_list:
            raise forms.ValidationError("Select at least one image.")
        if any(not re.match(r"^[0-9a-zA-Z_.:/@-]{1,255}$", i) for i in self.id_list):
            raise forms.ValidationError("The selection contains an invalid image id.")
        value = (data.get("value") or "").strip()
        mode = data.get("mode")
        if mode == "tag" and value and not re.match(r"^[\w][\w.-]{0,127}$", value):
            self.add_error("value", "A tag uses letters, digits, '_', '.' and '-' (128 at most).")
        if mode == "prefix" and value and not REPOSITORY_PREFIX.match(value):
            self.add_error("value", "A prefix looks like registry.local:5000/team (lowercase).")
        data["value"] = value.rstrip("/")
        return data


class ImageImportForm(forms.Form):
    tarball = forms.FileField(help_text="A root filesystem tarball (.tar, .tar.gz)")
    reference = forms.CharField(max_length=255, required=False, label="Repository[:tag]")

    def clean_reference(self) -> str:
        ref = self.cleaned_data["reference"].strip()
        if ref and not REFERENCE.match(ref):
            raise forms.ValidationError("Enter a reference such as myrootfs:v1 (lowercase).")
        return ref
