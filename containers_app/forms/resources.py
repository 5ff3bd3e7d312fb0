"""Forms that create networks and volumes."""

from __future__ import annotations

from django import forms

from containers_app.forms.parsing import (
    NAME,
    parse_labels,
)


class NetworkCreateForm(forms.Form):
    name = forms.CharField(max_length=64)
    subnet = forms.CharField(max_length=64, required=False, help_text="e.g. 172.30.0.0/24")
    gateway = forms.CharField(max_length=64, required=False)
    internal = forms.BooleanField(required=False)
    labels = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise forms.ValidationError("A name may use letters, digits, '_', '.' and '-'.")
        return name

    def clean_subnet(self) -> str:
        import ipaddress

        subnet = self.cleaned_data["subnet"].strip()
        if subnet:
            try:
                ipaddress.ip_network(subnet)
            except ValueError as e:
                raise forms.ValidationError(f"Not a subnet: {e}.") from e
        return subnet

    def clean_gateway(self) -> str:
        import ipaddress

        gateway = self.cleaned_data["gateway"].strip()
        if gateway:
            try:
                ipaddress.ip_address(gateway)
            except ValueError as e:
                raise forms.ValidationError(f"Not an IP address: {e}.") from e
        return gateway

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])


class VolumeCreateForm(forms.Form):
    name = forms.CharField(max_length=128, required=False, help_text="Empty: a random name.")
    labels = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if name and not NAME.match(name):
            raise forms.ValidationError("A name may use letters, digits, '_', '.' and '-'.")
        return name

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])
