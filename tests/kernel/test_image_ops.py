"""diff, commit, export/import, history, tag, rmi, image prune and system df, through the
real CLI (scenarios set-a S03, S04, S05, S09 and set-b S05, S06, S18, S25)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from runtime import images
from runtime.images import references
from tests.kernel.conftest import Moorage


def _layer_names(image_ref: str) -> list[str]:
    """Entry names of the top layer of ``image_ref``, as stored."""
    image = images.resolve(image_ref)
    top = image.layer_dirs()[-1]
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


def _rmi_all(moorage: Moorage, *refs: str) -> None:
    for ref in refs:
        moorage("rmi", "-f", ref)


def test_diff_lists_added_changed_and_deleted_files_like_docker(moorage: Moorage) -> None:
    """set-b S05: A/C/D from the upper dir, whiteouts understood, Docker's walk order."""
    moorage.ok(
        "run",
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo hi > /marker; rm /etc/group; echo x >> /etc/passwd",
    )
    assert moorage.ok("diff", "c1").splitlines() == [
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /marker",
    ]
    missing = moorage("run", "--rm", "busybox", "cat", "/marker")
    assert missing.code == 1 and "No such file or directory" in missing.err + missing.out
    assert "root:x:0:" in moorage.ok("run", "--rm", "busybox", "cat", "/etc/group")


def test_diff_leaves_out_the_engines_own_mount_points(moorage: Moorage) -> None:
    moorage.ok("run", "--init", "--name", "quiet", "busybox", "true")
    assert moorage.ok("diff", "quiet") == ""


def test_diff_of_a_missing_container_fails_like_docker(moorage: Moorage) -> None:
    result = moorage("diff", "no-such-container")
    assert result.code == 1 and "No such container: no-such-container" in result.err


def test_commit_makes_an_image_that_runs_the_change(
    moorage: Moorage, busybox: images.Image
) -> None:
    """set-b S06: diff, commit, tag, commit -m -a, images, inspect, history, Parent."""
    moorage.ok(
        "run",
        "--name",
        "builder",
        "busybox",
        "sh",
        "-c",
        'mkdir -p /opt/tools && printf "#!/bin/sh\\necho tool ok\\n" > /opt/tools/hello'
        " && chmod +x /opt/tools/hello",
    )
    assert moorage.ok("diff", "builder").splitlines() == [
        "A /opt",
        "A /opt/tools",
        "A /opt/tools/hello",
    ]
    image_id = moorage.ok("commit", "builder").strip()
    try:
        assert image_id.startswith("sha256:") and len(image_id) == 71
        assert moorage.ok("run", "--rm", image_id, "/opt/tools/hello") == "tool ok\n"
        moorage.ok("tag", image_id, "mydistro")
        moorage.ok("commit", "-m", "Added hello", "-a", "tester", "builder", "mydistro:v2")
        listing = moorage.ok("images", "mydistro")
        assert "mydistro     latest" in listing and "mydistro     v2" in listing
        assert moorage.ok("run", "--rm", "mydistro", "/opt/tools/hello") == "tool ok\n"
        shown = moorage.ok(
            "image", "inspect", "-f", "{{ .Comment }}|{{ .Author }}|{{ .Parent }}", "mydistro:v2"
        )
        assert shown.strip() == f"Added hello|tester|{busybox.id}"
        history = moorage.ok("history", "--no-trunc", "mydistro:v2").splitlines()
        assert "IMAGE" in history[0] and "COMMENT" in history[0]
        assert "Added hello" in history[1] and "mkdir -p /opt/tools" in history[1]
        assert history[2].startswith(busybox.id) and '#(nop)  CMD ["sh"]' in history[2]
        assert history[3].startswith("<missing>")
        config = images.resolve("mydistro:v2").config
        assert config["config"]["Cmd"][:2] == ["sh", "-c"]  # the container's command
        assert config["history"][-1]["author"] == "tester"
        assert moorage("run", "--rm", "busybox", "ls", "/opt/tools").code != 0
    finally:
        _rmi_all(moorage, "mydistro:v2", "mydistro:latest", image_id)


def test_commit_of_a_running_container_with_changes_and_no_pause(moorage: Moorage) -> None:
    moorage.ok(
        "run", "-d", "--name", "live", "busybox", "sh", "-c", "echo live > /state; sleep 300"
    )
    moorage.ok("exec", "live", "test", "-f", "/state")
    moorage.ok(
        "commit", "--pause=false", "-c", 'CMD ["cat", "/state"]', "-c", "ENV A=b", "live", "snap:1"
    )
    try:
        assert moorage.ok("run", "--rm", "snap:1") == "live\n"
        assert moorage.ok("run", "--rm", "snap:1", "sh", "-c", "echo $A") == "b\n"
        assert moorage.ok("inspect", "-f", "{{.State.Status}}", "live").strip() == "running"
    finally:
        _rmi_all(moorage, "snap:1")


def test_commit_leaves_out_mount_points_and_volumes(moorage: Moorage) -> None:
    """set-b S18 (first half) and the engine's /etc files: never part of an image."""
    moorage.ok(
        "run",
        "--init",
        "--name",
        "v1",
        "busybox",
        "sh",
        "-c",
        "echo y > /notvol; echo changed > /etc/hosts",
    )
    moorage.ok("commit", "v1", "volimg")
    try:
        assert _layer_names("volimg") == ["notvol"]
        assert moorage.ok("run", "--rm", "volimg", "cat", "/notvol") == "y\n"
    finally:
        _rmi_all(moorage, "volimg")


def test_export_then_import_runs_the_same_files(moorage: Moorage, tmp_path: Path) -> None:
    moorage.ok(
        "run", "--name", "ex", "busybox", "sh", "-c", "echo exported > /etc/motd; rm /etc/group"
    )
    out = tmp_path / "ex.tar"
    moorage.ok("export", "-o", str(out), "ex")
    with tarfile.open(out) as tf:
        names = set(tf.getnames())
    assert {"bin/sh", "etc/motd", "etc/passwd"} <= names
    assert "etc/group" not in names and not any(".wh." in n for n in names)
    image_id = moorage.ok("import", str(out), "exported:1").strip()
    try:
        assert moorage.ok("run", "--rm", "exported:1", "cat", "/etc/motd") == "exported\n"
        history = moorage.ok("history", "exported:1").splitlines()
        assert len(history) == 2 and "Imported from -" in history[1]
    finally:
        _rmi_all(moorage, image_id)


def test_export_refuses_to_write_to_a_terminal_only(moorage: Moorage) -> None:
    moorage.ok("create", "--name", "ex2", "busybox")
    done = moorage.popen("export", "ex2", stdout=-1, stderr=-1)
    data, _ = done.communicate(timeout=60)
    assert done.returncode == 0
    assert "bin/busybox" in tarfile.open(fileobj=io.BytesIO(data)).getnames()


def test_history_shows_nop_rows_missing_ids_and_formats(
    moorage: Moorage, busybox: images.Image
) -> None:
    """set-a S03: newest first, CMD row at 0B, the base ADD row with the layer's size."""
    lines = moorage.ok("history", "busybox").splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert lines[1].startswith(busybox.short_id()) and "CMD" in lines[1] and " 0B " in lines[1]
    assert lines[2].startswith("<missing>") and "ADD file:" in lines[2]
    assert moorage.ok("history", "-q", "busybox").split() == [busybox.short_id(), "<missing>"]
    sizes = moorage.ok("history", "--human=false", "--format", "{{.Size}}", "busybox").split()
    assert sizes[0] == "0" and int(sizes[1]) == busybox.size


def test_rmi_untags_one_of_several_tags_and_deletes_the_last(moorage: Moorage) -> None:
    """set-a S04 and S05: untag vs delete, and an image in use can't lose its last tag."""
    moorage.ok("run", "--name", "maker", "busybox", "sh", "-c", "echo s > /s05")
    image_id = moorage.ok("commit", "maker", "solo:1").strip()
    moorage.ok("tag", "solo:1", "demo/solo:v1")
    assert moorage.ok("rmi", "demo/solo:v1") == "Untagged: demo/solo:v1\n"
    moorage.ok("create", "--name", "user1", "solo:1", "true")
    refused = moorage("rmi", "solo:1")
    assert refused.code == 1
    assert (
        'unable to remove repository reference "solo:1" (must force) - container' in refused.err
    ) and image_id[7:19] in refused.err
    by_id = moorage("rmi", image_id[7:19])
    assert by_id.code == 1 and "is being used by stopped container" in by_id.err
    moorage.ok("rm", "user1")
    layer_dir = images.resolve(image_id).layer_dirs()[-1]
    out = moorage.ok("rmi", "solo:1").splitlines()
    assert out[0] == "Untagged: solo:1" and out[1] == f"Deleted: {image_id}"
    assert len(out) == 3 and out[2].startswith("Deleted: sha256:")  # its one layer
    assert not layer_dir.exists()
    assert moorage.ok("run", "--rm", "busybox", "true") == ""  # shared layers survive


def test_rmi_by_id_with_several_tags_needs_force_and_running_blocks_it(moorage: Moorage) -> None:
    moorage.ok("run", "--name", "m2", "busybox", "touch", "/x")
    image_id = moorage.ok("commit", "m2", "two:a").strip()
    moorage.ok("tag", "two:a", "two:b")
    refused = moorage("rmi", image_id[7:19])
    assert refused.code == 1 and "referenced in multiple repositories" in refused.err
    moorage.ok("run", "-d", "--name", "busy", "two:a", "sleep", "300")
    running = moorage("rmi", "-f", image_id[7:19])
    assert running.code == 1 and "image is being used by running container" in running.err
    assert "(cannot be forced)" in running.err
    moorage.ok("rm", "-f", "busy")
    out = moorage.ok("rmi", "-f", image_id[7:19]).splitlines()
    assert out[:2] == ["Untagged: two:a", "Untagged: two:b"] and f"Deleted: {image_id}" in out


def test_rmi_of_a_missing_image_reports_each_failure(moorage: Moorage) -> None:
    result = moorage("rmi", "nope:1", "busybox:does-not-exist")
    assert result.code == 1 and result.err.count("No such image") == 2


def test_image_prune_removes_dangling_images_and_all_unused_with_a(moorage: Moorage) -> None:
    """set-a S09: re-tagging leaves <none> images; prune removes them; -a spares used ones."""
    moorage.ok("run", "--name", "p1", "busybox", "touch", "/one")
    first = moorage.ok("commit", "p1", "web:latest").strip()
    moorage.ok("run", "--name", "p2", "busybox", "touch", "/two")
    second = moorage.ok("commit", "p2", "web:latest").strip()
    dangling = moorage.ok("images", "-q", "--no-trunc", "--filter", "dangling=true").split()
    assert first in dangling and second not in dangling
    assert "<none>" in moorage.ok("images")
    out = moorage.ok("image", "prune", "-f")
    assert f"deleted: {first}" in out and "Total reclaimed space:" in out
    assert moorage.ok("images", "-q", "--filter", "dangling=true") == ""
    moorage.ok("create", "--name", "keeper", "busybox", "true")  # busybox stays in use
    out = moorage.ok("image", "prune", "-a", "-f")
    assert "untagged: web:latest" in out and f"deleted: {second}" in out
    assert "busybox" in moorage.ok("images")


def test_image_prune_asks_first_and_does_nothing_on_no(moorage: Moorage) -> None:
    out = moorage.ok("image", "prune", input="n\n")
    assert "WARNING! This will remove all dangling images." in out
    assert "Total reclaimed space" not in out


def test_system_df_counts_images_containers_and_sizes(moorage: Moorage) -> None:
    moorage.ok("run", "--name", "df1", "busybox", "sh", "-c", "head -c 5000 /dev/zero > /blob")
    lines = moorage.ok("system", "df").splitlines()
    assert lines[0].split() == ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    containers = [line for line in lines if line.startswith("Containers")][0].split()
    assert containers[1:4] == ["1", "0", "5kB"] and containers[4] == "5kB"
    assert lines[-1].split()[:3] == ["Build", "Cache", "0"]
    verbose = moorage.ok("system", "df", "-v")
    assert "Images space usage:" in verbose and "df1" in verbose
    rows = moorage.ok("system", "df", "--format", "{{.Type}}={{.TotalCount}}").split()
    assert "Containers=1" in rows


def test_references_accept_normalised_names_and_digests(
    moorage: Moorage, busybox: images.Image
) -> None:
    for ref in (
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
        "index.docker.io/library/busybox",
    ):
        assert moorage.ok("image", "inspect", "-f", "{{.Id}}", ref).strip() == busybox.id
    moorage.ok("tag", "busybox", "localhost:5000/team/app:v2")
    digest = "sha256:" + "ab" * 32
    references.set_digest(references.parse(f"localhost:5000/team/app@{digest}"), busybox.id)
    try:
        for ref in (
            f"localhost:5000/team/app@{digest}",
            f"localhost:5000/team/app:v2@{digest}",
            "localhost:5000/team/app:v2",
        ):
            assert moorage.ok("image", "inspect", "-f", "{{.Id}}", ref).strip() == busybox.id
        doc = json.loads(moorage.ok("image", "inspect", "busybox"))[0]
        assert doc["RepoDigests"] == [f"localhost:5000/team/app@{digest}"]
        assert "localhost:5000/team/app:v2" in doc["RepoTags"]
        bad = moorage("tag", "busybox", f"app@{digest}")
        assert bad.code != 0 and "digest" in bad.err
        assert moorage.ok("rmi", f"localhost:5000/team/app@{digest}") == (
            f"Untagged: localhost:5000/team/app@{digest}\n"
        )
    finally:
        moorage("rmi", "localhost:5000/team/app:v2")
    assert moorage.ok("images", "-q", "busybox").strip() == busybox.short_id()


def test_a_parent_image_is_only_untagged_while_a_child_needs_it(moorage: Moorage) -> None:
    moorage.ok("run", "--name", "b1", "busybox", "touch", "/base")
    base = moorage.ok("commit", "b1", "base:1").strip()
    moorage.ok("run", "--name", "k1", "base:1", "touch", "/kid")
    kid = moorage.ok("commit", "k1", "kid:1").strip()
    moorage.ok("rm", "b1", "k1")
    assert moorage.ok("rmi", "base:1") == "Untagged: base:1\n"
    assert base[7:19] not in moorage.ok("images")  # intermediate: hidden without -a
    assert base[7:19] in moorage.ok("images", "-a")
    refused = moorage("rmi", base[7:19])
    assert refused.code == 1 and "image has dependent child images" in refused.err
    out = moorage.ok("rmi", "kid:1").splitlines()
    assert out[:2] == ["Untagged: kid:1", f"Deleted: {kid}"]
    assert f"Deleted: {base}" in out and len(out) == 5  # two images, two layers
    assert moorage.ok("run", "--rm", "busybox", "true") == ""


def test_volumes_bypass_commit_and_export(moorage: Moorage, tmp_path: Path) -> None:
    """set-b S18: what a container writes to a volume is in neither its image nor its export."""
    moorage.ok(
        "run",
        "--name",
        "vol1",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/f; echo y > /notvol",
    )
    assert "A /notvol" in moorage.ok("diff", "vol1").splitlines()
    moorage.ok("commit", "vol1", "volimg2")
    try:
        assert moorage.ok("run", "--rm", "volimg2", "cat", "/notvol") == "y\n"
        assert moorage("run", "--rm", "volimg2", "cat", "/data/f").code != 0
        out = tmp_path / "v.tar"
        moorage.ok("export", "-o", str(out), "vol1")
        with tarfile.open(out) as tf:
            names = tf.getnames()
        assert "notvol" in names and "data/f" not in names
        moorage.ok("cp", "vol1:/data/f", str(tmp_path / "f"))  # cp does see the volume
        assert (tmp_path / "f").read_text() == "x\n"
    finally:
        _rmi_all(moorage, "volimg2")
        moorage("rm", "-v", "vol1")


def test_rmi_force_keeps_the_layers_a_stopped_container_sits_on(moorage: Moorage) -> None:
    moorage.ok("run", "--name", "src", "busybox", "sh", "-c", "echo base > /base")
    image_id = moorage.ok("commit", "src", "gone:1").strip()
    moorage.ok("run", "--name", "orphan", "gone:1", "sh", "-c", "cat /base")
    top = images.resolve(image_id).layer_dirs()[-1]
    out = moorage.ok("rmi", "-f", "gone:1").splitlines()
    assert out == ["Untagged: gone:1", f"Deleted: {image_id}"] and top.is_dir()
    assert moorage.ok("start", "-a", "orphan") == "base\n"
    moorage.ok("commit", "orphan", "reborn:1")
    assert moorage.ok("run", "--rm", "reborn:1", "cat", "/base") == "base\n"
    assert len(moorage.ok("history", "-q", "reborn:1").split()) == 3
    moorage.ok("rm", "orphan", "src")
    _rmi_all(moorage, "reborn:1")
    moorage.ok("image", "prune", "-f")
    assert not top.exists()


def test_export_piped_into_import_from_stdin_runs(moorage: Moorage) -> None:
    """set-b S25, last step: ``tar -c . | docker import - deb:local`` then run."""
    moorage.ok("run", "--name", "pipe", "busybox", "sh", "-c", "echo 12.5 > /etc/debian_version")
    exported = moorage.popen("export", "pipe", stdout=-1)
    imported = moorage.popen(
        "import", "-", "moorage-test-deb:local", stdin=exported.stdout, stdout=-1, stderr=-1
    )
    exported.stdout.close()
    out, err = imported.communicate(timeout=60)
    assert exported.wait(timeout=60) == 0 and imported.returncode == 0, err
    try:
        assert (
            moorage.ok("run", "--rm", "moorage-test-deb:local", "cat", "/etc/debian_version")
            == "12.5\n"
        )
    finally:
        _rmi_all(moorage, out.decode().strip())


def test_images_digests_and_inspect_show_the_repo_digest_a_pull_records(moorage: Moorage) -> None:
    """``images --digests`` adds Docker's DIGEST column; ``inspect`` lists RepoDigests."""
    moorage.ok("tag", "busybox", "moorage-test-dig:1")
    image = images.resolve("moorage-test-dig:1")
    digest = "sha256:" + "d" * 64
    references.set_digest(references.parse(f"moorage-test-dig@{digest}"), image.id)
    try:
        lines = moorage.ok("images", "--digests", "moorage-test-dig").splitlines()
        assert lines[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
        assert lines[1].split()[:4] == ["moorage-test-dig", "1", digest, image.short_id()]
        assert "DIGEST" not in moorage.ok("images", "moorage-test-dig")
        shown = moorage.ok("image", "inspect", "-f", "{{json .RepoDigests}}", image.id)
        assert f"moorage-test-dig@{digest}" in json.loads(shown)
    finally:
        references.remove_tag(references.parse(f"moorage-test-dig@{digest}"))
        moorage("rmi", "moorage-test-dig:1")
