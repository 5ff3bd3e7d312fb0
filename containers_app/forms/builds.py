"""Forms of the build, pull and push pages: every field parsed here, one sentence per
error next to the field, so garbage never reaches a service (or a 500)."""

from __future__ import annotations

import re
import tarfile
from typing import Any

from django import forms

from containers_app.forms.parsing import lines
from containers_app.services import builds
from runtime.errors import InvalidSpec
from runtime.images import references


def _reference(text: str) -> str:
    text = text.strip()
    if "\x00" in text:
        raise forms.ValidationError("An image reference cannot contain NUL bytes.")
    try:
        parsed = references.parse(text)
    except InvalidSpec as e:
        raise forms.ValidationError(str(e)) from None
    return references.familiar(parsed)


class BuildForm(forms.Form):
    dockerfile = forms.CharField(
        required=False,
        max_length=builds.MAX_DOCKERFILE,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 12, "class": "mono", "spellcheck": "false"}),
        help_text="Paste a Dockerfile, or upload a context below.",
    )
    context = forms.FileField(
        required=False,
        label="Context (tar or tar.gz)",
        help_text="A tar of the build directory, as `tar -czf ctx.tgz -C dir .` makes.",
    )
    dockerfile_path = forms.CharField(
        required=False, max_length=255, initial="Dockerfile", label="Dockerfile in context"
    )
    tags = forms.CharField(
        required=False, max_length=2000, help_text="name:tag, several separated by spaces"
    )
    build_args = forms.CharField(
        required=False,
        max_length=8000,
        label="Build args",
        widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="KEY=VALUE per line",
    )
    target = forms.CharField(required=False, max_length=128, help_text="stage to stop at")
    no_cache = forms.BooleanField(required=False, label="--no-cache")

    def clean_dockerfile(self) -> str:
        text: str = self.cleaned_data["dockerfile"]
        if not text.strip():
            return ""
        if "\x00" in text:
            raise forms.ValidationError("A Dockerfile cannot contain NUL bytes.")
        from runtime.build import parse

        try:
            parse(text)
        except InvalidSpec as e:  # DockerfileError names the line
            raise forms.ValidationError(str(e)) from None
        return text

    def clean_context(self) -> Any:
        upload = self.cleaned_data.get("context")
        if upload is None:
            return None
        if upload.size > builds.max_context():
            raise forms.ValidationError(
                f"The context is larger than the limit of {builds.max_context()} bytes."
            )
        try:
            with tarfile.open(fileobj=upload, mode="r:*") as tar:
                tar.next()  # the first header parses: it is a tar (gzip or plain)
        except (tarfile.TarError, EOFError, OSError):
            raise forms.ValidationError("The context is not a tar or tar.gz archive.") from None
        upload.seek(0)
        return upload

    def clean_dockerfile_path(self) -> str:
        try:
            return builds.check_dockerfile_path(self.cleaned_data["dockerfile_path"])
        except InvalidSpec as e:
            raise forms.ValidationError(str(e)) from None

    def clean_tags(self) -> list[str]:
        return [_reference(t) for t in re.split(r"[\s,]+", self.cleaned_data["tags"]) if t]

    def clean_build_args(self) -> dict[str, str]:
        args: dict[str, str] = {}
        for line in lines(self.cleaned_data["build_args"]):
            key, eq, value = line.partition("=")
            if not eq or not builds.BUILD_ARG.match(key):
                raise forms.ValidationError(f"Not a KEY=VALUE line: {line[:80]!r}.")
            args[key] = value
        return args

    def clean_target(self) -> str:
        target = self.cleaned_data["target"].strip()
        if target and not builds.STAGE.match(target):
            raise forms.ValidationError("A stage name uses letters, digits, '_', '.' and '-'.")
        return target

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not self.errors and bool(data.get("dockerfile")) == bool(data.get("context")):
            raise forms.ValidationError(
                "Paste a Dockerfile or upload a build context (one of the two)."
            )
        return data


class PullForm(forms.Form):
    reference = forms.CharField(
        max_length=255, label="Image", help_text="e.g. registry.local:5000/team/app:v1"
    )

    def clean_reference(self) -> str:
        return _reference(self.cleaned_data["reference"])


class PushForm(forms.Form):
    target = forms.CharField(
        max_length=255,
        label="Push as",
        help_text="registry/repository:tag; a new name is tagged first",
    )

    def clean_target(self) -> str:
        target = _reference(self.cleaned_data["target"])
        if "@" in target:
            raise forms.ValidationError("Push a tag, not a digest.")
        return target
