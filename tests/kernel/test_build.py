"""``moorage build`` end to end: real RUN containers, layers, cache, the CLI's output.

Scenarios from shared/scenarios: set-a S07 (layers versus metadata), S08 (cache), S10
(multi-stage); set-b S07 (steps, cache, history, failed build), S08 (CMD vs
ENTRYPOINT), S09 (advanced instructions, .dockerignore), S10 (ONBUILD), S18 (volumes
bypass build). Every image is built from the session's busybox; containers are removed
by the ``moorage`` fixture.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from runtime import containers, images
from tests.kernel.conftest import CLI, Moorage

pytestmark = pytest.mark.kernel


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return directory


def history(ref: str) -> list[dict]:
    return list(images.resolve(ref).config["history"])


S07_DOCKERFILE = """\
FROM busybox
LABEL maintainer="demo@example.com"
ENV GREETING=hello
RUN mkdir -p /src && echo built > /src/build.txt
COPY app.sh /src/app.sh
WORKDIR /src
EXPOSE 8080
ENTRYPOINT ["sh", "/src/app.sh"]
"""


@pytest.fixture
def web(tmp_path: Path) -> Path:
    return write(
        tmp_path / "web", {"app.sh": 'echo "$GREETING from $(pwd)"\n', "Dockerfile": S07_DOCKERFILE}
    )


def test_build_streams_steps_and_makes_layers_only_for_run_and_copy(
    moorage: Moorage, web: Path, busybox: images.Image
) -> None:
    """set-a S07 and set-b S07: steps, ids, history rows, layer count, the run."""
    before = len(containers.store.ids())
    out = moorage.ok("build", "-t", "web:latest", str(web))
    assert out.startswith("Sending build context to Docker daemon")
    assert [int(n) for n in re.findall(r"^Step (\d+)/8 : ", out, re.M)] == list(range(1, 9))
    assert "Step 4/8 : RUN mkdir -p /src && echo built > /src/build.txt" in out
    assert re.search(r"^ ---> Running in [0-9a-f]{12}$", out, re.M)
    assert re.search(r"^Removing intermediate container [0-9a-f]{12}$", out, re.M)
    built = images.resolve("web:latest")
    assert f"Successfully built {built.short_id()}\nSuccessfully tagged web:latest\n" in out
    assert len(containers.store.ids()) == before  # no intermediate container is left

    assert len(built.diff_ids()) == len(busybox.diff_ids()) + 2
    rows = history("web:latest")[len(busybox.config["history"]) :]
    assert [r["created_by"] for r in rows] == [
        "/bin/sh -c #(nop)  LABEL maintainer=demo@example.com",
        "/bin/sh -c #(nop)  ENV GREETING=hello",
        "/bin/sh -c mkdir -p /src && echo built > /src/build.txt",
        rows[3]["created_by"],
        "/bin/sh -c #(nop)  WORKDIR /src",
        "/bin/sh -c #(nop)  EXPOSE 8080",
        '/bin/sh -c #(nop)  ENTRYPOINT ["sh" "/src/app.sh"]',
    ]
    assert re.fullmatch(
        r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /src/app.sh ", rows[3]["created_by"]
    )
    assert [bool(r.get("empty_layer")) for r in rows] == [
        True,
        True,
        False,
        False,
        True,
        True,
        True,
    ]
    assert images.resolve("web:latest").inspect()["Parent"]
    assert moorage.ok("run", "--rm", "web:latest") == "hello from /src\n"


def test_an_identical_rebuild_is_all_cache_hits_and_an_edit_invalidates_from_copy_on(
    moorage: Moorage, web: Path
) -> None:
    """set-a S08: cache hits, invalidation by content, --no-cache."""
    moorage.ok("build", "-t", "web:latest", str(web))
    first = images.resolve("web:latest").id
    again = moorage.ok("build", "-t", "web:latest", str(web))
    assert again.count(" ---> Using cache") == 7
    assert "Running in" not in again
    assert images.resolve("web:latest").id == first

    (web / "app.sh").write_text('echo "$GREETING from $(pwd)"\necho changed\n')
    edited = moorage.ok("build", "-t", "web:latest", str(web))
    steps = edited.split("Step ")[1:]
    assert ["Using cache" in s for s in steps] == [
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert images.resolve("web:latest").id != first

    fresh = moorage.ok("build", "--no-cache=true", "-t", "web:latest", str(web))
    assert "Using cache" not in fresh
    assert "Running in" in fresh


def test_a_failing_run_reports_its_exit_code_keeps_the_old_tag_and_leaves_no_container(
    moorage: Moorage, tmp_path: Path
) -> None:
    """set-b S07: the failed-build rule."""
    ctx = write(
        tmp_path / "myimage",
        {"Dockerfile": "FROM busybox\nRUN mkdir -p /opt/app\nRUN echo layer-two > /opt/app/msg\n"},
    )
    moorage.ok("build", "-t", "myimage", str(ctx))
    assert moorage.ok("run", "--rm", "myimage", "cat", "/opt/app/msg") == "layer-two\n"
    rows = [r["created_by"] for r in history("myimage")]
    assert rows[-2:] == ["/bin/sh -c mkdir -p /opt/app", "/bin/sh -c echo layer-two > /opt/app/msg"]
    old = images.resolve("myimage").id
    count = len(containers.store.ids())

    with open(ctx / "Dockerfile", "a") as f:
        f.write("RUN echo on-stdout; echo on-stderr >&2; exit 3\n")
    failed = moorage("build", "-t", "myimage", str(ctx))
    assert failed.code == 1
    assert "Step 4/4 : RUN echo on-stdout" in failed.out
    assert "on-stdout" in failed.out and "on-stderr" in failed.out
    assert failed.err.strip() == (
        "The command '/bin/sh -c echo on-stdout; echo on-stderr "
        ">&2; exit 3' returned a non-zero code: 3"
    )
    assert images.resolve("myimage").id == old
    assert len(containers.store.ids()) == count


def test_multi_stage_build_copies_only_the_artifact(
    moorage: Moorage, tmp_path: Path, busybox: images.Image
) -> None:
    """set-a S10: COPY --from a named stage; the junk stays behind; --target stops early."""
    ctx = write(
        tmp_path / "ms",
        {
            "Dockerfile": (
                "FROM busybox AS builder\n"
                "RUN mkdir /out && echo artifact-v1 > /out/artifact.txt && "
                "dd if=/dev/zero of=/out/junk bs=1M count=5 2>/dev/null\n"
                "FROM busybox AS production\n"
                "COPY --from=builder /out/artifact.txt /artifact.txt\n"
                'CMD ["cat", "/artifact.txt"]\n'
            )
        },
    )
    moorage.ok("build", "-t", "multi:stage", str(ctx))
    assert moorage.ok("run", "--rm", "multi:stage") == "artifact-v1\n"
    assert moorage("run", "--rm", "multi:stage", "ls", "/out").code != 0
    assert images.resolve("multi:stage").size - busybox.size < 100_000

    again = moorage.ok("build", "-t", "multi:stage", str(ctx))
    assert again.count("Using cache") == 3  # RUN, COPY, CMD; FROM is never cached

    moorage.ok("build", "--target", "builder", "-t", "multi:builder", str(ctx))
    assert moorage.ok("run", "--rm", "multi:builder", "ls", "/out") == "artifact.txt\njunk\n"
    missing = moorage("build", "--target", "nope", str(ctx))
    assert missing.code != 0 and "failed to reach build target nope" in missing.err


def test_cmd_and_entrypoint_behave_like_docker_at_run_time(
    moorage: Moorage, tmp_path: Path
) -> None:
    """set-b S08: CMD vs ENTRYPOINT."""
    cases = {
        "cmdimg": "FROM busybox\nCMD echo default-cmd\n",
        "twocmd": "FROM busybox\nCMD echo first\nCMD echo second\n",
        "epimg": 'FROM busybox\nENTRYPOINT ["echo", "entry"]\nCMD ["default-arg"]\n',
        "lsimg": 'FROM busybox\nENTRYPOINT ["/bin/ls"]\n',
        "execform": 'FROM busybox\nCMD ["echo", "$HOME"]\n',
    }
    for tag, text in cases.items():
        moorage.ok("build", "-q", "-t", tag, str(write(tmp_path / tag, {"Dockerfile": text})))
    assert moorage.ok("run", "--rm", "cmdimg") == "default-cmd\n"
    assert moorage.ok("run", "--rm", "cmdimg", "echo", "override") == "override\n"
    assert moorage.ok("run", "--rm", "twocmd") == "second\n"
    assert moorage.ok("run", "--rm", "epimg") == "entry default-arg\n"
    assert moorage.ok("run", "--rm", "epimg", "other") == "entry other\n"
    assert moorage.ok("run", "--rm", "--entrypoint", "sh", "epimg", "-c", "echo shell") == "shell\n"
    assert "/etc/passwd" in moorage.ok("run", "--rm", "lsimg", "-l", "/etc/passwd")
    assert moorage.ok("run", "--rm", "execform") == "$HOME\n"


def test_env_arg_workdir_and_user_shape_later_steps_and_the_image(
    moorage: Moorage, tmp_path: Path
) -> None:
    ctx = write(
        tmp_path / "vars",
        {
            "Dockerfile": (
                "ARG BASE=busybox\n"
                "FROM ${BASE}\n"
                "ARG FLAVOUR=plain\n"
                "ARG UNSET\n"
                "ENV DIR=/opt/${FLAVOUR:-none} OTHER=${UNSET:-fallback} PLUS=${FLAVOUR:+yes}\n"
                "WORKDIR $DIR\n"
                "WORKDIR sub\n"
                'RUN echo "$FLAVOUR $(pwd)" > flavour.txt\n'
                "USER nobody\n"
                "RUN id -u > /tmp/uid\n"
                'CMD ["sh", "-c", '
                '"cat flavour.txt /tmp/uid; echo $DIR $OTHER $PLUS ${FLAVOUR:-gone}"]\n'
            )
        },
    )
    out = moorage.ok(
        "build", "--build-arg", "FLAVOUR=spicy", "--build-arg", "NOBODY=x", "-t", "vars", str(ctx)
    )
    assert "[Warning] One or more build-args [NOBODY] were not consumed" in out
    # ARG values reach RUN but are not kept in the image; ENV is.
    assert moorage.ok("run", "--rm", "vars") == (
        "spicy /opt/spicy/sub\n65534\n/opt/spicy fallback yes gone\n"
    )
    doc = images.resolve("vars").inspect()["Config"]
    assert doc["WorkingDir"] == "/opt/spicy/sub" and doc["User"] == "nobody"
    assert "|1 FLAVOUR=spicy /bin/sh -c echo" in history("vars")[-4]["created_by"]


def test_advanced_instructions_and_dockerignore(moorage: Moorage, tmp_path: Path) -> None:
    """set-b S09: MAINTAINER, ADD of a local tar, ADD ., VOLUME, USER, .dockerignore."""
    ctx = tmp_path / "adv"
    ctx.mkdir()
    with tarfile.open(ctx / "app.tar", "w") as tf:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"a\n"))
    write(
        ctx,
        {
            "hello.txt": "hello\n",
            "secret.txt": "s3cret\n",
            ".dockerignore": "secret.txt\n",
            "Dockerfile": (
                "# a comment\nFROM busybox\nMAINTAINER Test Team <test@example.com>\n"
                "ENV WEBAPP_PORT 8080\nWORKDIR /opt/webapp\nADD app.tar /opt/webapp/\n"
                "COPY hello.txt /opt/webapp/hello.txt\nADD . /ctx\nEXPOSE 8080\n"
                'VOLUME ["/opt/webapp/data"]\nUSER nobody\nSTOPSIGNAL SIGQUIT\n'
                "HEALTHCHECK --interval=5s --retries=2 CMD true\n"
                'CMD ["sh", "-c", "echo $WEBAPP_PORT; pwd; id -u; ls /opt/webapp; ls /ctx"]\n'
            ),
        },
    )
    moorage.ok("build", "-t", "advimg", "--label", "team=qa", str(ctx))
    out = moorage.ok("run", "--rm", "advimg").split("\n")
    assert out[:3] == ["8080", "/opt/webapp", "65534"]
    assert {"a.txt", "hello.txt"} <= set(out[3:]) and "app.tar" not in out[3:6]
    ctx_listing = set(out[out.index("hello.txt") + 1 :])
    assert {"Dockerfile", "app.tar", "hello.txt"} <= ctx_listing
    assert "secret.txt" not in ctx_listing
    assert moorage.ok("run", "--rm", "-e", "WEBAPP_PORT=8000", "advimg").split("\n")[0] == "8000"
    image = images.resolve("advimg")
    config = image.inspect()["Config"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Volumes"] == {"/opt/webapp/data": {}}
    assert config["StopSignal"] == "SIGQUIT"
    assert config["Labels"] == {"team": "qa"}
    assert config["Healthcheck"] == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 5_000_000_000,
        "Retries": 2,
    }
    assert image.inspect()["Author"] == "Test Team <test@example.com>"


def test_onbuild_triggers_run_in_the_child_build_only(moorage: Moorage, tmp_path: Path) -> None:
    """set-b S10."""
    base = write(tmp_path / "ob" / "base", {"Dockerfile": "FROM busybox\nONBUILD ADD . /app/src\n"})
    moorage.ok("build", "-t", "onbuild-base", str(base))
    assert moorage("run", "--rm", "onbuild-base", "ls", "/app/src").code != 0
    child = write(
        tmp_path / "ob" / "child",
        {
            "payload.txt": "payload\n",
            "Dockerfile": 'FROM onbuild-base\nCMD ["cat", "/app/src/payload.txt"]\n',
        },
    )
    out = moorage.ok("build", "-t", "onbuild-child", str(child))
    assert "# Executing 1 build trigger\n" in out
    assert moorage.ok("run", "--rm", "onbuild-child") == "payload\n"
    assert images.resolve("onbuild-child").inspect()["Config"]["OnBuild"] is None


def test_files_a_run_writes_under_a_volume_do_not_reach_the_image(
    moorage: Moorage, tmp_path: Path
) -> None:
    """set-b S18."""
    ctx = write(
        tmp_path / "vb",
        {"Dockerfile": "FROM busybox\nVOLUME /data\nRUN echo x > /data/f\nRUN echo y > /notvol\n"},
    )
    moorage.ok("build", "-t", "volbuild", str(ctx))
    assert moorage.ok(
        "run", "--rm", "volbuild", "sh", "-c", "ls /data | wc -l; cat /notvol"
    ).split() == ["0", "y"]


def test_a_secret_removed_in_a_later_step_survives_in_its_layer(
    moorage: Moorage, tmp_path: Path
) -> None:
    """Secrets surviving in layers: deleting a file only whites it out above."""
    ctx = write(
        tmp_path / "sec",
        {
            "key.pem": "PRIVATE\n",
            "Dockerfile": ("FROM busybox\nCOPY key.pem /key.pem\nRUN rm /key.pem\n"),
        },
    )
    moorage.ok("build", "-t", "leaky", str(ctx))
    assert moorage("run", "--rm", "leaky", "cat", "/key.pem").code != 0
    layer_dirs = images.resolve("leaky").layer_dirs()
    assert (layer_dirs[-2] / "key.pem").read_text() == "PRIVATE\n"  # still in the image


def test_bad_dockerfiles_fail_with_the_line_and_build_nothing(
    moorage: Moorage, tmp_path: Path
) -> None:
    cases = {
        "FROM busybox\nRUN true\nFOO bar\n": (
            "Dockerfile parse error line 3: unknown instruction: FOO"
        ),
        "FROM busybox\nENV\n": "Dockerfile parse error line 2: ENV requires at least one",
        "RUN true\n": "Dockerfile parse error line 1: no build stage",
        "FROM nosuchimage\n": "No such image: nosuchimage:latest",
        "FROM busybox\nCOPY ../outside /x\n": "forbidden path outside the build context",
        "FROM busybox\nCOPY missing.txt /x\n": "file not found in build context",
        "FROM busybox\nADD http://127.0.0.1:9/f /f\n": "downloading from a URL is turned off",
    }
    count = len(images.list_images(all=True))
    for index, (text, message) in enumerate(cases.items()):
        ctx = write(tmp_path / f"bad{index}", {"Dockerfile": text})
        result = moorage("build", "-t", "never", str(ctx))
        assert result.code == 1, text
        assert message in result.err, (text, result.err)
    assert len(images.list_images(all=True)) == count
    with pytest.raises(Exception, match="No such image"):
        images.resolve("never")


def test_context_from_stdin_as_a_tar_or_a_lone_dockerfile(moorage: Moorage, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in {
            "Dockerfile": b"FROM busybox\nCOPY f.txt /f.txt\n",
            "f.txt": b"from-tar\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    done = subprocess.run(
        CLI + ["build", "-t", "fromtar", "-"],
        input=buffer.getvalue(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert moorage.ok("run", "--rm", "fromtar", "cat", "/f.txt") == "from-tar\n"
    alone = moorage.ok("build", "-q", "-", input="FROM busybox\nLABEL alone=yes\n").strip()
    assert images.resolve(alone).inspect()["Config"]["Labels"] == {"alone": "yes"}


def test_scratch_image_ids_shell_and_chown(
    moorage: Moorage, tmp_path: Path, busybox: images.Image
) -> None:
    """FROM scratch with COPY --from an image, FROM by id, SHELL, COPY --chown."""
    ctx = write(
        tmp_path / "misc",
        {
            "hello.txt": "hello\n",
            "Dockerfile": (
                f"FROM {busybox.short_id()}\n"
                'SHELL ["/bin/busybox", "sh", "-c"]\n'
                "RUN echo $0 > /shell.txt\n"
                "COPY --chown=nobody:nobody hello.txt /owned/\n"
                'CMD ["sh", "-c", "cat /shell.txt; stat -c %u:%g /owned/hello.txt"]\n'
            ),
        },
    )
    moorage.ok("build", "-t", "misc", str(ctx))
    assert moorage.ok("run", "--rm", "misc") == "sh\n65534:65534\n"
    assert history("misc")[-3]["created_by"] == "/bin/busybox sh -c echo $0 > /shell.txt"
    scratch = write(
        tmp_path / "scratch",
        {
            "Dockerfile": (
                "FROM scratch\nCOPY --from=busybox:latest /bin/busybox /busybox\n"
                'CMD ["/busybox", "echo", "from-scratch"]\n'
            )
        },
    )
    moorage.ok("build", "-t", "tiny", str(scratch))
    assert len(images.resolve("tiny").diff_ids()) == 1
    assert moorage.ok("run", "--rm", "tiny") == "from-scratch\n"
    failed = moorage(
        "build", str(write(tmp_path / "norun", {"Dockerfile": "FROM scratch\nRUN true\n"}))
    )
    assert failed.code == 1 and "FROM scratch" in failed.err


def test_add_downloads_a_url_only_when_allowed(moorage: Moorage, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = write(tmp_path / "served", {"file.txt": "downloaded\n"})
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/file.txt"
        ctx = write(tmp_path / "url", {"Dockerfile": f"FROM busybox\nADD {url} /dl/\n"})
        refused = moorage("build", "-t", "urlimg", str(ctx))
        assert refused.code == 1 and "--allow-url-download" in refused.err
        moorage.ok("build", "--allow-url-download", "-t", "urlimg", str(ctx))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert moorage.ok("run", "--rm", "urlimg", "cat", "/dl/file.txt") == "downloaded\n"


def test_copy_never_writes_through_a_symlink_from_the_context(
    moorage: Moorage, tmp_path: Path
) -> None:
    """Untrusted contexts: a link copied by one source must not redirect the next."""
    outside = tmp_path / "host-dir"
    outside.mkdir()
    ctx = write(
        tmp_path / "evil", {"b/s/pwned": "x\n", "Dockerfile": "FROM busybox\nCOPY a b /x/\n"}
    )
    (ctx / "a").mkdir()
    (ctx / "a" / "s").symlink_to(outside)
    moorage.ok("build", "-t", "evil", str(ctx))
    assert list(outside.iterdir()) == []  # the later source replaced the link
    assert moorage.ok("run", "--rm", "evil", "cat", "/x/s/pwned") == "x\n"
    link_only = write(tmp_path / "linkonly", {"Dockerfile": "FROM busybox\nCOPY a /x/\n"})
    (link_only / "a").mkdir()
    (link_only / "a" / "s").symlink_to(outside)
    moorage.ok("build", "-t", "linkonly", str(link_only))
    assert moorage.ok("run", "--rm", "linkonly", "readlink", "/x/s") == f"{outside}\n"


def test_interrupting_a_build_removes_its_running_container(
    moorage: Moorage, tmp_path: Path
) -> None:
    import signal

    ctx = write(tmp_path / "slow", {"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
    count = len(containers.store.ids())
    build = moorage.popen("build", "--no-cache", str(ctx), stdout=subprocess.PIPE, text=True)
    try:
        assert build.stdout is not None
        for line in build.stdout:  # wait until the RUN container is really running
            if line.strip() == "started":
                break
        build.send_signal(signal.SIGINT)
        assert build.wait(timeout=30) == 130
    finally:
        if build.poll() is None:
            build.kill()
            build.wait()
        if build.stdout is not None:
            build.stdout.close()
    assert len(containers.store.ids()) == count  # removed before the CLI exited


def test_a_run_whose_command_cannot_start_fails_the_build(moorage: Moorage, tmp_path: Path) -> None:
    ctx = write(tmp_path / "noexec", {"Dockerfile": 'FROM busybox\nRUN ["nonexistent"]\n'})
    count = len(containers.store.ids())
    result = moorage("build", str(ctx))
    assert result.code == 1
    assert "The command 'nonexistent' could not be run" in result.err
    assert len(containers.store.ids()) == count
