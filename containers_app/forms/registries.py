"""The registry entry form. The password field never shows the stored password: left
empty on an edit, the stored one is kept."""

from __future__ import annotations

from django import forms

from containers_app.services import registries
from runtime.errors import InvalidSpec


class RegistryForm(forms.Form):
    url = forms.CharField(
        max_length=255,
        label="Registry",
        help_text="e.g. registry.local:5000 or https://registry.example.com",
    )
    username = forms.CharField(max_length=255, required=False)
    password = forms.CharField(
        max_length=1024,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave empty to keep the stored one.",
    )
    insecure = forms.BooleanField(
        required=False, label="Allow plain HTTP", help_text="Only for registries without TLS."
    )

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        try:
            registries.domain_of(url)
        except InvalidSpec as e:
            raise forms.ValidationError(str(e)) from None
        return url

    def clean_username(self) -> str:
        name = self.cleaned_data["username"].strip()
        if any(c in name for c in ":\x00\r\n"):
            raise forms.ValidationError("A username cannot contain ':' or control characters.")
        return name

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if any(c in password for c in "\x00\r\n"):
            raise forms.ValidationError("A password cannot contain control characters.")
        return password
