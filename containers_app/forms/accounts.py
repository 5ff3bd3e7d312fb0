"""Forms of the audit filter and of the users and teams admin pages."""

from __future__ import annotations

import re

from django import forms
from django.contrib.auth import get_user_model

from containers_app.forms.parsing import (
    NAME,
)
from containers_app.models import AuditResult, Role


class AuditFilterForm(forms.Form):
    user = forms.CharField(max_length=150, required=False)
    action = forms.CharField(max_length=100, required=False)
    target = forms.CharField(max_length=200, required=False)
    result = forms.ChoiceField(
        choices=[("", "any")] + [(r, r) for r in AuditResult.values], required=False
    )
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
    page = forms.IntegerField(min_value=1, required=False)


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
    is_superuser = forms.BooleanField(required=False, label="Site admin")

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if not re.match(r"^[\w.@+-]+$", username):
            raise forms.ValidationError("Letters, digits and @/./+/-/_ only.")
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("A user with that name exists already.")
        return username


class TeamCreateForm(forms.Form):
    name = forms.CharField(max_length=100)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise forms.ValidationError("A team name may use letters, digits, '_', '.' and '-'.")
        return name


class MembershipForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self) -> str:
        username = self.cleaned_data["username"].strip()
        if not get_user_model().objects.filter(username=username).exists():
            raise forms.ValidationError("No such user.")
        return username
