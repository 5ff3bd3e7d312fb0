"""Forms of the containers pages: create (every option of `moorage run` the issue
lists), the list's filters, bulk actions, rename and commit."""

from __future__ import annotations

import re
import shlex
from typing import Any

from django import forms

from containers_app.forms.parsing import (
    ENV_KEY,
    HOSTNAME,
    MAX_COUNT,
    NAME,
    NAME_RULE,
    PORT,
    REFERENCE,
    lines,
    parse_labels,
    port_numbers_ok,
    split_command,
)
from runtime import units
from runtime.errors import InvalidSpec
from runtime.spec import RESTART_POLICIES, parse_restart


class ContainerCreateForm(forms.Form):
    image = forms.CharField(max_length=255, help_text="e.g. busybox:latest")
    name = forms.CharField(
        max_length=128,
        required=False,
        help_text="Optional; with a count above 1, a suffix -1, -2 … is added.",
    )
    command = forms.CharField(max_length=4096, required=False, help_text="e.g. sleep 3600")
    entrypoint = forms.CharField(max_length=4096, required=False)
    env = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Environment",
        help_text="One KEY=value per line.",
    )
    ports = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One per line: [IP:][HOST:]CONTAINER[/tcp|udp], e.g. 8080:80",
    )
    volumes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One per line: VOLUME:/path[:ro] (host paths: site admins only)",
    )
    network = forms.CharField(
        max_length=128,
        required=False,
        initial="bridge",
        widget=forms.TextInput(attrs={"list": "network-names"}),
        help_text="bridge, none, or a network name",
    )
    restart = forms.CharField(
        max_length=64,
        required=False,
        initial="no",
        widget=forms.TextInput(attrs={"list": "restart-policies"}),
        help_text="no, always, unless-stopped, on-failure[:N]",
    )
    memory = forms.CharField(max_length=32, required=False, help_text="e.g. 256m")
    cpus = forms.CharField(max_length=32, required=False, label="CPUs", help_text="e.g. 0.5")
    labels = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One key=value per line.",
    )
    hostname = forms.CharField(max_length=63, required=False)
    workdir = forms.CharField(max_length=1024, required=False, label="Working dir")
    user = forms.CharField(max_length=128, required=False)
    count = forms.IntegerField(
        min_value=1,
        max_value=MAX_COUNT,
        initial=1,
        help_text=f"How many copies to create (1–{MAX_COUNT}).",
    )
    start = forms.BooleanField(required=False, initial=True, label="Start after creating")
    # Risky options, removed in __init__ for users who may not use them.
    privileged = forms.BooleanField(required=False)
    cap_add = forms.CharField(
        max_length=512,
        required=False,
        label="Add capabilities",
        help_text="Space-separated, e.g. NET_ADMIN SYS_TIME",
    )
    devices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="One per line: /dev/HOST[:/dev/CONTAINER[:rwm]]",
    )
    pid_host = forms.BooleanField(required=False, label="Host PID namespace")
    ipc_host = forms.BooleanField(required=False, label="Host IPC namespace")

    # form field -> the permission table's risky option it asks for
    RISKY_FIELDS = {
        "privileged": "privileged",
        "cap_add": "cap_add",
        "devices": "devices",
        "pid_host": "host_pid",
        "ipc_host": "host_ipc",
    }

    def __init__(self, *args: Any, allowed_risky: frozenset[str] = frozenset(), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.allowed_risky = allowed_risky

    def offered_fields(self) -> list[Any]:
        """The fields to show: risky ones only to users allowed to use them. The others
        still parse, so a forged value reaches the service, which refuses it (403) and
        audits the attempt, instead of being dropped without a word."""
        return [
            bound
            for bound in self
            if self.RISKY_FIELDS.get(bound.name, "") in self.allowed_risky
            or bound.name not in self.RISKY_FIELDS
        ]

    # -- one clean_<field> per field: each error names what is wrong with that field --

    def clean_image(self) -> str:
        image = self.cleaned_data["image"].strip()
        if not image or any(c.isspace() for c in image) or not re.match(r"^[\w][\w.:/@-]*$", image):
            raise forms.ValidationError("Enter an image reference such as busybox:latest.")
        return image

    def clean_name(self) -> str | None:
        name = self.cleaned_data["name"].strip()
        if name and (not NAME.match(name) or len(name) < 2 and not name.isalnum()):
            raise forms.ValidationError(NAME_RULE)
        return name or None

    def clean_command(self) -> tuple[str, ...] | None:
        return split_command(self.cleaned_data["command"], "command")

    def clean_entrypoint(self) -> tuple[str, ...] | None:
        return split_command(self.cleaned_data["entrypoint"], "entrypoint")

    def clean_env(self) -> tuple[str, ...]:
        items = lines(self.cleaned_data["env"])
        for item in items:
            key = item.split("=", 1)[0]
            if not ENV_KEY.match(key):
                raise forms.ValidationError(f"Not a KEY=value line: {item!r}.")
            if "\x00" in item:
                raise forms.ValidationError("Environment values cannot contain NUL bytes.")
        return tuple(items)

    def clean_ports(self) -> tuple[str, ...]:
        items = lines(self.cleaned_data["ports"])
        for item in items:
            if not PORT.match(item) or not port_numbers_ok(item):
                raise forms.ValidationError(
                    f"Not a port mapping: {item!r}; use [IP:][HOST:]CONTAINER[/tcp|udp], "
                    "ports 1–65535."
                )
        return tuple(items)

    def clean_volumes(self) -> tuple[str, ...]:
        items = lines(self.cleaned_data["volumes"])
        for item in items:
            parts = item.split(":")
            if len(parts) > 3 or not all(parts):
                raise forms.ValidationError(f"Not a volume: {item!r}; use VOLUME:/path[:ro].")
            target = parts[1] if len(parts) > 1 else parts[0]
            if not target.startswith("/"):
                raise forms.ValidationError(
                    f"The mount point in {item!r} must be an absolute path."
                )
            if len(parts) == 3 and not set(parts[2].split(",")) <= {"ro", "rw", "z", "Z", "nocopy"}:
                raise forms.ValidationError(f"Unknown volume options in {item!r}.")
            if (
                len(parts) > 1
                and parts[0].startswith(("/", "."))
                and ("bind_mount" not in self.allowed_risky)
            ):
                raise forms.ValidationError("Host bind mounts are for site admins only.")
        return tuple(items)

    def clean_network(self) -> str:
        network = self.cleaned_data["network"].strip() or "bridge"
        if network == "host" and "host_network" not in self.allowed_risky:
            raise forms.ValidationError("The host network is for site admins only.")
        if not (
            network in ("bridge", "none", "host")
            or NAME.match(network)
            or network.startswith("container:")
            and NAME.match(network[10:])
        ):
            raise forms.ValidationError(f"Not a network name: {network!r}.")
        return network

    def clean_restart(self) -> tuple[str, int]:
        text = self.cleaned_data["restart"].strip() or "no"
        try:
            policy, maximum = parse_restart(text)
        except InvalidSpec as e:
            raise forms.ValidationError(f"{e}; use one of {', '.join(RESTART_POLICIES)}.") from e
        return policy, maximum

    def clean_memory(self) -> int:
        text = self.cleaned_data["memory"].strip()
        if not text:
            return 0
        try:
            value = units.parse_bytes(text)
        except InvalidSpec as e:
            raise forms.ValidationError("Enter a size such as 256m or 1g.") from e
        if value < 6 * 1024 * 1024:
            raise forms.ValidationError("The minimum memory limit is 6m.")
        return value

    def clean_cpus(self) -> int:
        text = self.cleaned_data["cpus"].strip()
        if not text:
            return 0
        try:
            value = units.parse_cpus(text)
        except InvalidSpec as e:
            raise forms.ValidationError("Enter a number of CPUs such as 0.5 or 2.") from e
        if value <= 0:
            raise forms.ValidationError("The CPU limit must be above 0.")
        return value

    def clean_labels(self) -> dict[str, str]:
        return parse_labels(self.cleaned_data["labels"])

    def clean_hostname(self) -> str | None:
        hostname = self.cleaned_data["hostname"].strip()
        if hostname and not HOSTNAME.match(hostname):
            raise forms.ValidationError(
                "A hostname uses letters, digits, '.' and '-' (63 at most)."
            )
        return hostname or None

    def clean_workdir(self) -> str | None:
        workdir = self.cleaned_data["workdir"].strip()
        if workdir and not workdir.startswith("/"):
            raise forms.ValidationError("The working directory must be an absolute path.")
        if "\x00" in workdir:
            raise forms.ValidationError("The working directory cannot contain NUL bytes.")
        return workdir or None

    def clean_user(self) -> str | None:
        user = self.cleaned_data["user"].strip()
        if user and not re.match(r"^[\w.-]+(:[\w.-]+)?$", user):
            raise forms.ValidationError("Enter a user as NAME, UID, NAME:GROUP or UID:GID.")
        return user or None

    def clean_cap_add(self) -> tuple[str, ...]:
        caps = self.cleaned_data.get("cap_add", "").upper().replace(",", " ").split()
        for cap in caps:
            if not re.match(r"^(CAP_)?[A-Z_]+$|^ALL$", cap):
                raise forms.ValidationError(f"Not a capability name: {cap!r}.")
        return tuple(caps)

    def clean_devices(self) -> tuple[str, ...]:
        items = lines(self.cleaned_data.get("devices", ""))
        for item in items:
            if not item.startswith("/dev/"):
                raise forms.ValidationError(f"A device is a path under /dev: {item!r}.")
        return tuple(items)

    @staticmethod
    def initial_from_spec(spec: dict[str, Any]) -> dict[str, Any]:
        """Form values that describe ``spec`` (ContainerSpec.to_json()), for "duplicate"."""

        def joined(items: Any) -> str:
            return shlex.join(items) if items else ""

        restart = spec.get("restart_policy") or "no"
        if spec.get("restart_max"):
            restart = f"{restart}:{spec['restart_max']}"
        memory = int(spec.get("memory") or 0)
        nano = int(spec.get("nano_cpus") or 0)
        return {
            "image": spec.get("image", ""),
            "command": joined(spec.get("cmd")),
            "entrypoint": joined(spec.get("entrypoint")),
            "env": "\n".join(spec.get("env") or ()),
            "ports": "\n".join(spec.get("publish") or ()),
            "volumes": "\n".join(spec.get("volumes") or ()),
            "network": spec.get("network_mode") or "bridge",
            "restart": restart,
            "memory": f"{memory // (1 << 20)}m"
            if memory and memory % (1 << 20) == 0
            else (str(memory) if memory else ""),
            "cpus": f"{nano / 1e9:g}" if nano else "",
            "labels": "\n".join(f"{k}={v}" for k, v in (spec.get("labels") or {}).items()),
            "hostname": spec.get("hostname") or "",
            "workdir": spec.get("workdir") or "",
            "user": spec.get("user") or "",
            "count": 1,
            "start": True,
        }

    def spec_options(self) -> dict[str, Any]:
        """The ContainerSpec keyword arguments this form describes (runtime/spec.py names)."""
        data = self.cleaned_data
        policy, maximum = data["restart"]
        options: dict[str, Any] = {
            "image": data["image"],
            "name": data["name"],
            "cmd": data["command"],
            "entrypoint": data["entrypoint"],
            "env": data["env"],
            "publish": data["ports"],
            "volumes": data["volumes"],
            "network_mode": data["network"],
            "restart_policy": policy,
            "restart_max": maximum,
            "memory": data["memory"],
            "nano_cpus": data["cpus"],
            "labels": data["labels"],
            "hostname": data["hostname"],
            "workdir": data["workdir"],
            "user": data["user"],
        }
        if data.get("privileged"):
            options["privileged"] = True
        if data.get("cap_add"):
            options["cap_add"] = data["cap_add"]
        if data.get("devices"):
            options["devices"] = data["devices"]
        if data.get("pid_host"):
            options["pid_mode"] = "host"
        if data.get("ipc_host"):
            options["ipc_mode"] = "host"
        return options


class ContainerFilterForm(forms.Form):
    """The containers page's query string: every value optional, garbage ignored."""

    SORTS = ("name", "-name", "created", "-created", "state", "-state", "image", "-image")

    all = forms.BooleanField(required=False)
    q = forms.CharField(max_length=200, required=False)
    state = forms.CharField(max_length=32, required=False)
    image = forms.CharField(max_length=255, required=False)
    label = forms.CharField(max_length=255, required=False)
    team = forms.CharField(max_length=150, required=False)
    sort = forms.ChoiceField(choices=[(s, s) for s in SORTS], required=False)
    page = forms.IntegerField(min_value=1, required=False)

    def values(self) -> dict[str, Any]:
        """Cleaned values, or defaults where a value was invalid (a bad link never 500s)."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {name: cleaned.get(name) or field.initial for name, field in self.fields.items()}


BULK_ACTIONS = ("start", "stop", "restart", "kill", "pause", "unpause", "remove")


class BulkActionForm(forms.Form):
    action = forms.ChoiceField(choices=[(a, a) for a in BULK_ACTIONS])
    ids = forms.CharField(required=False, widget=forms.MultipleHiddenInput)
    select_all_matching = forms.BooleanField(required=False)
    force = forms.BooleanField(required=False, help_text="Kill running containers before removing.")
    remove_volumes = forms.BooleanField(required=False, label="Also remove anonymous volumes")
    confirmed = forms.BooleanField(required=False)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.id_list: list[str] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        ids = [i.strip() for i in raw if i.strip()]
        if any(not re.match(r"^[0-9a-zA-Z_.-]{1,128}$", i) for i in ids):
            raise forms.ValidationError("The selection contains an invalid container id.")
        if not ids and not data.get("select_all_matching"):
            raise forms.ValidationError("Select at least one container.")
        self.id_list = ids
        return data


class RenameForm(forms.Form):
    name = forms.CharField(max_length=128)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not NAME.match(name):
            raise forms.ValidationError(NAME_RULE)
        return name


class CommitForm(forms.Form):
    reference = forms.CharField(max_length=255, required=False, label="Repository[:tag]")
    message = forms.CharField(max_length=1000, required=False)
    author = forms.CharField(max_length=255, required=False)
    pause = forms.BooleanField(required=False, initial=True)

    def clean_reference(self) -> str:
        ref = self.cleaned_data["reference"].strip()
        if ref and not REFERENCE.match(ref):
            raise forms.ValidationError("Enter a reference such as myapp:v1 (lowercase).")
        return ref
