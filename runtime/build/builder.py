"""``build``: run a Dockerfile's instructions against the image store, step by step.

Kernel interfaces: those of ``steps`` (a container per RUN, a read-only overlay view per
COPY/ADD); everything else here is image configs. Like Docker's classic builder, every
step makes an image (metadata steps an image with an empty history row, RUN/COPY/ADD
one with a new layer) whose parent is the previous step's, and ``cache`` remembers
(parent, step) → image so an identical step is reused. Output is streamed as Docker
prints it (``Step 1/5 : FROM busybox``, `` ---> Using cache``, ``Successfully built``).

Owns nothing on disk beyond what ``runtime.images`` and ``cache`` store. It never pulls
(a FROM image must be local), never downloads an ADD URL unless ``allow_urls``, and
never leaves a build container behind. HEALTHCHECK is stored in the config; running it
is the engine's business.
"""

from __future__ import annotations

import importlib.util
import json
import posixpath
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runtime import images, units
from runtime.build import cache, copying, steps
from runtime.build import dockerfile as df
from runtime.build.context import Context
from runtime.build.steps import StepFailed
from runtime.errors import InvalidSpec, NotFound
from runtime.images import config as image_config
from runtime.images import layers, references

__all__ = ["BuildOptions", "BuildResult", "build", "StepFailed"]

Output = Callable[[str], None]
DEFAULT_SHELL = ("/bin/sh", "-c")


@dataclass(frozen=True)
class BuildOptions:
    tags: tuple[str, ...] = ()
    dockerfile: str = "Dockerfile"
    build_args: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    allow_urls: bool = False  # ADD <url> downloads only when asked
    network_mode: str | None = None  # None: the default bridge if there is one, else none


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    tags: tuple[str, ...]
    steps: int
    cached: int  # how many steps came from the cache


@dataclass
class _Stage:
    """What the builder knows while it works through one stage."""

    name: str | None
    image: images.Image | None  # None: FROM scratch with no step yet
    config: dict[str, Any]
    args: dict[str, str] = field(default_factory=dict)  # ARGs declared in this stage
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd_set: bool = False
    author: str = ""

    @property
    def parent_id(self) -> str:
        return self.image.id if self.image is not None else ""

    def env(self) -> dict[str, str]:
        """Variables for expansion: ARGs, overridden by ENV (as in Docker)."""
        values = dict(self.args)
        for item in self.config.get("Env") or []:
            key, _, value = item.partition("=")
            values[key] = value
        return values


def default_network() -> str:
    """'bridge' once the networking package provides it, else 'none'."""
    return "bridge" if importlib.util.find_spec("runtime.network.store") else "none"


class _Builder:
    def __init__(self, context: Context, options: BuildOptions, out: Output) -> None:
        self.context, self.options, self.out = context, options, out
        self.stages: list[_Stage] = []
        self.meta_args: dict[str, str | None] = {}
        self.used_args: set[str] = set()
        self.network = options.network_mode or default_network()
        self.total = 0
        self.step = 0
        self.cached = 0
        self.escape = "\\"

    # --- driving --------------------------------------------------------------------

    def run(self, parsed: df.Dockerfile) -> images.Image:
        instructions = self._select(parsed.instructions)
        self.escape = parsed.escape
        self.total = len(instructions)
        for ins in instructions:
            self.step += 1
            self.out(f"Step {self.step}/{self.total} : {ins.original}\n")
            self._dispatch(ins)
        stage = self.stages[-1]
        if stage.image is None:
            raise InvalidSpec("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(self.options.build_args) - self.used_args)
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed\n")
        return stage.image

    def _select(self, instructions: list[df.Instruction]) -> list[df.Instruction]:
        """Instructions up to the end of the target stage, plus --label as a LABEL."""
        first = next((i for i, ins in enumerate(instructions) if ins.keyword != "ARG"), None)
        if first is None or instructions[first].keyword != "FROM":
            line = instructions[first].line if first is not None else 1
            raise df.DockerfileError(
                line,
                "no build stage in current context: the first "
                "instruction must be FROM (only ARG before it)",
            )
        chosen = instructions
        if self.options.target:
            end = None
            for i, ins in enumerate(instructions):
                words = ins.rest.split()
                if (
                    ins.keyword == "FROM"
                    and len(words) == 3
                    and words[2].lower() == self.options.target.lower()
                ):
                    end = next(
                        (
                            j
                            for j in range(i + 1, len(instructions))
                            if instructions[j].keyword == "FROM"
                        ),
                        len(instructions),
                    )
            if end is None:
                raise InvalidSpec(
                    f"failed to reach build target {self.options.target} in Dockerfile"
                )
            chosen = instructions[:end]
        if self.options.labels:
            text = " ".join(
                f"{json.dumps(k)}={json.dumps(v)}" for k, v in sorted(self.options.labels.items())
            )
            chosen = chosen + [df.parse_line(f"LABEL {text}", chosen[-1].line)]
        return chosen

    def _dispatch(self, ins: df.Instruction) -> None:
        if ins.keyword == "FROM":
            self._from(ins)
            return
        if ins.keyword == "ARG" and not self.stages:
            for key, value in df.pairs(ins, self._meta_env(), self.escape):
                self.meta_args[key] = None if value == "\0" else value
            return
        handler = getattr(self, "_" + ins.keyword.lower())
        handler(self.stages[-1], ins)

    # --- committing -----------------------------------------------------------------

    def _commit(
        self, stage: _Stage, key: str, history_text: str, make_layer: Callable[[], Any] | None
    ) -> None:
        """One step: reuse the cached image for (parent, key) or make a new one."""
        if not self.options.no_cache:
            hit = cache.lookup(stage.parent_id, key)
            if hit is not None:
                stage.image = images.resolve(hit)
                stage.config = dict(stage.image.config.get("config") or {})
                self.cached += 1
                self.out(f" ---> Using cache\n ---> {stage.image.short_id()}\n")
                return
        new_layers = [make_layer()] if make_layer is not None else []
        entry: dict[str, Any] = {"created": image_config.now(), "created_by": history_text}
        if make_layer is None:
            entry["empty_layer"] = True
        image = layers.create_image(
            stage.image,
            new_layers,
            container_config=stage.config,
            history=[entry],
            author=stage.author,
            extra={"container_config": {"Cmd": ["/bin/sh", "-c", key]}},
        )
        cache.record(stage.parent_id, key, image.id)
        stage.image = image
        stage.config = dict(image.config.get("config") or {})
        self.out(f" ---> {image.short_id()}\n")

    def _metadata(self, stage: _Stage, text: str) -> None:
        nop = f"#(nop)  {text}"
        self._commit(stage, nop, f"/bin/sh -c {nop}", None)

    # --- instructions ---------------------------------------------------------------

    def _meta_env(self) -> dict[str, str]:
        values = {k: v for k, v in self.meta_args.items() if v is not None}
        for key in self.meta_args:
            if key in self.options.build_args:
                values[key] = self.options.build_args[key]
                self.used_args.add(key)
        return values

    def _from(self, ins: df.Instruction) -> None:
        words = df.expand_words(ins.rest, self._meta_env(), self.escape)
        ref = words[0]
        name = words[2] if len(words) == 3 else None
        if name and any(s.name and s.name.lower() == name.lower() for s in self.stages):
            raise df.DockerfileError(ins.line, f"duplicate name {name}")
        previous = next((s for s in self.stages if s.name and s.name.lower() == ref.lower()), None)
        if previous is not None:
            base = previous.image
        elif ref.lower() == "scratch":
            base = None
        else:
            try:
                base = images.resolve(ref)
            except NotFound:
                shown = (
                    references.familiar(references.parse(ref))
                    if not re.fullmatch(r"[0-9a-f]{12,64}", ref)
                    else ref
                )
                raise NotFound(
                    f"No such image: {shown} (build does not pull; pull or build it first)"
                ) from None
        stage = _Stage(name, base, dict(base.config.get("config") or {}) if base else {})
        self.stages.append(stage)
        self.out(f" ---> {base.short_id()}\n" if base else " ---> \n")
        triggers = list(stage.config.get("OnBuild") or [])
        if triggers:
            self.out(
                f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n"
            )
            stage.config["OnBuild"] = None  # triggers fire once, in the direct child
            for text in triggers:
                trigger = df.parse_line(text, ins.line, self.escape)
                getattr(self, "_" + trigger.keyword.lower())(stage, trigger)

    def _arg(self, stage: _Stage, ins: df.Instruction) -> None:
        for key, default in df.pairs(ins, stage.env(), self.escape):
            if key in self.options.build_args:
                value: str | None = self.options.build_args[key]
                self.used_args.add(key)
            elif default != "\0":
                value = default
            else:
                value = self.meta_args.get(key)
            if value is not None:
                stage.args[key] = value
        self._metadata(stage, f"ARG {ins.rest}")

    def _env(self, stage: _Stage, ins: df.Instruction) -> None:
        config = dict(stage.config)
        env = list(config.get("Env") or [])
        shown = []
        for key, value in df.pairs(ins, stage.env(), self.escape):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
            shown.append(f"{key}={value}")
            stage.config = dict(config, Env=env)  # later pairs see earlier ones
        self._metadata(stage, "ENV " + " ".join(shown))

    def _label(self, stage: _Stage, ins: df.Instruction) -> None:
        labels = dict(stage.config.get("Labels") or {})
        shown = []
        for key, value in df.pairs(ins, stage.env(), self.escape):
            labels[key] = value
            shown.append(f"{key}={value}")
        stage.config = dict(stage.config, Labels=labels)
        self._metadata(stage, "LABEL " + " ".join(shown))

    def _maintainer(self, stage: _Stage, ins: df.Instruction) -> None:
        stage.author = ins.rest
        self._metadata(stage, f"MAINTAINER {ins.rest}")

    def _command_form(self, stage: _Stage, ins: df.Instruction) -> list[str]:
        if ins.json_args is not None:
            return list(ins.json_args)
        return list(stage.shell) + [ins.rest]

    def _cmd(self, stage: _Stage, ins: df.Instruction) -> None:
        cmd = self._command_form(stage, ins)
        stage.config = dict(stage.config, Cmd=cmd)
        stage.cmd_set = True
        self._metadata(stage, f"CMD {_go_list(cmd)}")

    def _entrypoint(self, stage: _Stage, ins: df.Instruction) -> None:
        entrypoint = self._command_form(stage, ins) if ins.rest else None
        config = dict(stage.config, Entrypoint=entrypoint)
        if not stage.cmd_set:
            config["Cmd"] = None  # a new ENTRYPOINT drops the base image's CMD
        stage.config = config
        self._metadata(stage, f"ENTRYPOINT {_go_list(entrypoint or [])}")

    def _workdir(self, stage: _Stage, ins: df.Instruction) -> None:
        path = df.expand(ins.rest, stage.env(), self.escape)
        current = stage.config.get("WorkingDir") or "/"
        stage.config = dict(
            stage.config, WorkingDir=posixpath.normpath(posixpath.join(current, path))
        )
        self._metadata(stage, f"WORKDIR {path}")

    def _user(self, stage: _Stage, ins: df.Instruction) -> None:
        user = df.expand(ins.rest, stage.env(), self.escape)
        stage.config = dict(stage.config, User=user)
        self._metadata(stage, f"USER {user}")

    def _expose(self, stage: _Stage, ins: df.Instruction) -> None:
        ports = dict(stage.config.get("ExposedPorts") or {})
        words = df.expand_words(ins.rest, stage.env(), self.escape)
        for word in words:
            match = re.fullmatch(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", word.lower())
            if not match or not 0 < int(match[1]) <= int(match[2] or match[1]) <= 65535:
                raise df.DockerfileError(ins.line, f"invalid containerPort: {word}")
            for port in range(int(match[1]), int(match[2] or match[1]) + 1):
                ports[f"{port}/{match[3] or 'tcp'}"] = {}
        stage.config = dict(stage.config, ExposedPorts=ports)
        self._metadata(stage, "EXPOSE " + " ".join(words))

    def _volume(self, stage: _Stage, ins: df.Instruction) -> None:
        env = stage.env()
        paths_ = (
            [df.expand(p, env, self.escape) for p in ins.json_args]
            if ins.json_args is not None
            else df.expand_words(ins.rest, env, self.escape)
        )
        if not paths_ or not all(p.strip() for p in paths_):
            raise df.DockerfileError(ins.line, "VOLUME specified can not be an empty string")
        volumes = dict(stage.config.get("Volumes") or {})
        volumes.update({p: {} for p in paths_})
        stage.config = dict(stage.config, Volumes=volumes)
        self._metadata(stage, f"VOLUME [{' '.join(paths_)}]")

    def _stopsignal(self, stage: _Stage, ins: df.Instruction) -> None:
        signal = df.expand(ins.rest, stage.env(), self.escape)
        units.parse_signal(signal)
        stage.config = dict(stage.config, StopSignal=signal)
        self._metadata(stage, f"STOPSIGNAL {signal}")

    def _shell(self, stage: _Stage, ins: df.Instruction) -> None:
        assert ins.json_args is not None  # the parser insists on the JSON form
        stage.shell = tuple(ins.json_args)
        stage.config = dict(stage.config, Shell=list(ins.json_args))
        self._metadata(stage, f"SHELL {_go_list(list(ins.json_args))}")

    def _onbuild(self, stage: _Stage, ins: df.Instruction) -> None:
        trigger = df.parse_line(ins.rest, ins.line, self.escape)
        text = (
            f"{trigger.keyword} {ins.rest.split(None, 1)[1]}"
            if len(ins.rest.split(None, 1)) > 1
            else trigger.keyword
        )
        stage.config = dict(stage.config, OnBuild=list(stage.config.get("OnBuild") or []) + [text])
        self._metadata(stage, f"ONBUILD {text}")

    def _healthcheck(self, stage: _Stage, ins: df.Instruction) -> None:
        kind, _, rest = ins.rest.partition(" ")
        if kind.upper() == "NONE":
            check: dict[str, Any] = {"Test": ["NONE"]}
        else:
            body = df.parse_line(f"CMD {rest.strip()}", ins.line, self.escape)
            test = (
                ["CMD", *body.json_args] if body.json_args is not None else ["CMD-SHELL", body.rest]
            )
            check = {"Test": test}
            for flag, key in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
                ("start-interval", "StartInterval"),
            ):
                value = ins.flag(flag)
                if value is not None:
                    check[key] = int(units.parse_duration(value) * 1_000_000_000)
            retries = ins.flag("retries")
            if retries is not None:
                if not retries.isdigit():
                    raise df.DockerfileError(ins.line, f"invalid retries: {retries}")
                check["Retries"] = int(retries)
        stage.config = dict(stage.config, Healthcheck=check)
        self._metadata(stage, f"HEALTHCHECK {ins.rest}")

    def _run(self, stage: _Stage, ins: df.Instruction) -> None:
        if stage.image is None:
            raise InvalidSpec("RUN needs a shell, but the image is empty (FROM scratch)")
        argv = self._command_form(stage, ins)
        env_keys = {e.partition("=")[0] for e in stage.config.get("Env") or []}
        args = {k: v for k, v in stage.args.items() if k not in env_keys}
        line = " ".join(argv)
        key = (
            f"|{len(args)} " + " ".join(f"{k}={v}" for k, v in sorted(args.items())) + f" {line}"
            if args
            else line
        )
        image = stage.image
        self._commit(
            stage,
            key,
            key,
            lambda: steps.run(
                image, argv, [f"{k}={v}" for k, v in sorted(args.items())], self.network, self.out
            ),
        )

    def _copy(self, stage: _Stage, ins: df.Instruction) -> None:
        self._copy_or_add(stage, ins, add=False)

    def _add(self, stage: _Stage, ins: df.Instruction) -> None:
        self._copy_or_add(stage, ins, add=True)

    def _copy_or_add(self, stage: _Stage, ins: df.Instruction, add: bool) -> None:
        copying.copy_step(self, stage, ins, add)


def _go_list(items: list[str]) -> str:
    """A string list as Go's %q prints it: ["a" "b"]."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def build(context: Context, options: BuildOptions, out: Output | None = None) -> BuildResult:
    """Build the Dockerfile in ``context``; tag the result; stream progress to ``out``.

    Raises DockerfileError (an InvalidSpec) for syntax errors, NotFound for a missing
    FROM image or COPY source, StepFailed for a RUN that exits non-zero (its container is
    removed first). Tags are checked before the first step and applied after the last.
    """
    write = out or _stdout
    targets = [references.parse(tag) for tag in options.tags]
    for target in targets:
        if target.digest is not None:
            raise InvalidSpec(f"refusing to create a tag with a digest reference: {target}")
    parsed = df.parse(context.read_dockerfile(options.dockerfile))
    builder = _Builder(context, options, write)
    image = builder.run(parsed)
    write(f"Successfully built {image.short_id()}\n")
    shown = []
    for target in targets:
        images.tag(image.id, str(target))
        shown.append(references.familiar(target))
        write(f"Successfully tagged {references.familiar(target)}\n")
    return BuildResult(image.id, tuple(shown), builder.total, builder.cached)
