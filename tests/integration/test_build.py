"""docker.build against the real engine (legacy builder, images FROM the base_image fixture)."""

import functools
import http.server
import os
import re
import time
import subprocess
import tarfile
import threading

from support.engine import docker, image_id, inspect

DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY . /ctx/
"""


def cat(image, path):
    return docker("run", "--rm", image, "cat", path)


def context(buildout, name="ctx", dockerfile=DOCKERFILE, files=None):
    buildout.write(name + "/Dockerfile", dockerfile)
    for rel, text in (files or {"hello.txt": "hello\n", "sub/data.txt": "data\n"}).items():
        buildout.write(name + "/" + rel, text)
    return buildout.path(name)


def part(prefix, base_image, source="ctx", extra="", args=()):
    return """
        [img]
        recipe = dockeroo:docker.build
        name = %s-img:v1
        source = %s
        build-args =
            BASE=%s
            %s
        %s
        """ % (prefix, source, base_image, "\n    ".join(args), extra)


def test_build_content_fingerprint(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    context(buildout)
    buildout.configure(part(prefix, base_image) + """
        [vol]
        recipe = dockeroo:docker.volume
        name = %s-vol
        labels =
            image=${img:image}
            fingerprint=${img:fingerprint}
        """ % prefix)
    result = buildout.ok()
    assert "Successfully built" in result.output  # the build output reaches the log
    first = image_id(ref)
    assert cat(ref, "/ctx/hello.txt") == "hello\n"
    assert cat(ref, "/ctx/sub/data.txt") == "data\n"
    labels = inspect("image", ref)["Config"]["Labels"]
    assert labels["io.dockeroo.part"] == "img"
    vol_labels = inspect("volume", prefix + "-vol")["Labels"]
    assert vol_labels["image"] == ref
    assert vol_labels["fingerprint"] == labels["io.dockeroo.fingerprint"]

    # nothing changed: nothing built
    result = buildout.ok()
    assert "Updating img" in result.output
    assert "is up to date" in result.output and "nothing to build" in result.output
    assert "Building image" not in result.output
    assert image_id(ref) == first

    # new mtimes only: no rebuild
    for root, dirs, files in os.walk(buildout.path("ctx")):
        for name in files + dirs:
            os.utime(os.path.join(root, name), (1e9, 1e9))
    result = buildout.ok()
    assert "Building image" not in result.output
    assert image_id(ref) == first

    # the same content copied elsewhere (new mtimes, new inodes): reinstalled, not rebuilt
    subprocess.run(["cp", "-r", buildout.path("ctx"), buildout.path("copy")], check=True)
    buildout.configure(part(prefix, base_image, source="copy"))
    result = buildout.ok()
    assert "Installing img" in result.output and "Building image" not in result.output
    assert image_id(ref) == first

    # one changed byte: rebuilt, the old image is removed
    buildout.write("copy/sub/data.txt", "dato\n")
    result = buildout.ok()
    assert "Building image" in result.output
    second = image_id(ref)
    assert second != first
    assert cat(ref, "/ctx/sub/data.txt") == "dato\n"
    assert inspect("image", first) is None
    assert "Removed the previous image" in result.output

    buildout.uninstall_all()
    assert inspect("image", ref) is None
    assert inspect("image", second) is None


def test_build_dockerignore(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    context(buildout, files={"keep.txt": "keep\n", "cache/big.bin": "x" * 100, "notes.log": "a\n",
                             ".dockerignore": "cache\n*.log\nDockerfile\n"})
    buildout.configure(part(prefix, base_image))
    buildout.ok()
    first = image_id(ref)
    listing = docker("run", "--rm", ref, "find", "/ctx").split()
    assert "/ctx/keep.txt" in listing
    assert "/ctx/cache" not in listing and "/ctx/notes.log" not in listing

    # ignored files change: no rebuild
    buildout.write("ctx/cache/big.bin", "y" * 100)
    buildout.write("ctx/cache/new.bin", "new")
    buildout.write("ctx/notes.log", "b\n")
    result = buildout.ok()
    assert "Building image" not in result.output
    assert image_id(ref) == first

    # the Dockerfile counts even though it is ignored
    buildout.write("ctx/Dockerfile", DOCKERFILE + "RUN echo changed > /changed\n")
    result = buildout.ok()
    assert "Building image" in result.output
    assert cat(ref, "/changed") == "changed\n"


def test_build_args_labels_target_dockerfile(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    context(buildout, files={"hello.txt": "hello\n"})
    # a multi-stage Dockerfile outside the context
    buildout.write("docker/Multi", """\
        ARG BASE
        FROM ${BASE} AS first
        ARG GREETING
        RUN echo "$GREETING" > /greeting
        COPY hello.txt /hello.txt
        FROM first AS second
        RUN echo second > /second
        """)
    buildout.configure(part(prefix, base_image, args=["GREETING=hello world = yes"], extra="""
        dockerfile = ../docker/Multi
        target = first
        labels =
            org.example.team=a b
        """))
    buildout.ok()
    assert cat(ref, "/greeting") == "hello world = yes\n"
    assert cat(ref, "/hello.txt") == "hello\n"
    assert docker("run", "--rm", ref, "ls", "/second", check=False) == ""  # stage 'first' only
    labels = inspect("image", ref)["Config"]["Labels"]
    assert labels["org.example.team"] == "a b"
    first = image_id(ref)

    # a change of the Dockerfile outside the context rebuilds
    with open(buildout.path("docker/Multi"), "a") as handle:
        handle.write("RUN echo more > /more\n")
    buildout.configure(part(prefix, base_image, args=["GREETING=hi"], extra="""
        dockerfile = ../docker/Multi
        labels =
            org.example.team=c
        """))
    buildout.ok()
    assert image_id(ref) != first
    assert cat(ref, "/greeting") == "hi\n"
    assert cat(ref, "/second") == "second\n"  # no target: the last stage
    assert inspect("image", ref)["Config"]["Labels"]["org.example.team"] == "c"


def test_build_platform_and_default_tag(buildout, prefix, base_image):
    context(buildout)
    arch = docker("version", "--format", "{{.Server.Arch}}").strip()
    buildout.configure("""
        [%s-plain]
        recipe = dockeroo:docker.build
        source = ctx
        build-args = BASE=%s
        platform = linux/%s
        no-cache = true
        """ % (prefix, base_image, arch))
    buildout.ok()
    found = inspect("image", prefix + "-plain:latest")  # name = part name, tag latest
    assert (found["Os"], found["Architecture"]) == ("linux", arch)


def step_images(output):
    """The ids of the images a legacy build's steps made (not FROM, not from
    the cache), from its output: Docker's lines (``Step 2/3 : COPY``,
    `` ---> ID``) or Podman's (``STEP 2/3: COPY``, ``--> ID``, 11 digits)."""
    found, instruction, cached = [], None, False
    for line in output.splitlines():
        step = re.search(r"(?:Step|STEP) \d+/\d+ ?: (\S+)", line)
        made = re.search(r"-?--> ([0-9a-f]{11,64})\s*$", line)
        if step:
            instruction, cached = step.group(1).upper(), False
        elif re.search(r"-?--> Using cache\b", line):
            cached = True
        elif made and instruction not in (None, "FROM") and not cached:
            found.append(made.group(1))
            instruction = None
    return found


def existing(images):
    """Those of IMAGES (ids, possibly short) that the engine still has."""
    listed = [i.split(":", 1)[-1] for i in
              docker("image", "ls", "--all", "--no-trunc", "--quiet").split()]
    return [image for image in images if any(i.startswith(image) for i in listed)]


def test_build_failure_tags_nothing(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    # a step that makes an image (COPY), then one that fails
    context(buildout, dockerfile=DOCKERFILE + "RUN echo step-output; false\n",
            files={"hello.txt": prefix + "\n"})
    buildout.configure(part(prefix, base_image))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [img]" in line and "building image %s failed" % ref in line, result.output
    assert "step-output" in result.output
    assert ("returned a non-zero code" in result.output  # Docker's builder
            or "while running runtime: exit status 1" in result.output)  # Podman's
    assert inspect("image", ref) is None
    # the legacy builder keeps what its steps made as cache: removed, no half-made image
    made = step_images(result.output)
    assert made, result.output
    assert existing(made) == [], result.output

    # a working image, then a failing change: the tag stays on the working image
    context(buildout)
    buildout.ok()
    good = image_id(ref)
    buildout.write("ctx/Dockerfile", DOCKERFILE + "RUN false\n")
    buildout.fails()
    assert image_id(ref) == good
    assert docker("ps", "-a", "--filter", "ancestor=" + good, "--format", "{{.Names}}") == ""


def test_build_timeout_names_the_option_and_tags_nothing(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    # (Podman runs a cancelled build's step to its end: within the 10 s the part waits)
    context(buildout, dockerfile=DOCKERFILE + "RUN sleep 7\n", files={"hello.txt": prefix + "\n"})
    buildout.configure(part(prefix, base_image, extra="timeout = 3"))
    result = buildout.fails()
    line = result.error_line()
    assert "Part [img], option 'timeout' = '3'" in line and "did not finish within 3" in line, \
        result.output
    assert "legacy builder" not in line
    assert inspect("image", ref) is None
    # the step the client's kill cancelled made no image that stays
    made = step_images(result.output)
    assert made, result.output  # the COPY step's
    assert existing(made) == [], result.output


def test_a_cancelled_step_still_running_after_the_wait_is_removed_by_the_next_run(
        buildout, prefix, base_image):
    """Podman runs a cancelled build's step to its end: one that outlives the
    part's 10 s wait keeps its image in use; the image is retired, and a run
    after the step ended removes it (on Docker the step is cancelled at once)."""
    context(buildout, dockerfile=DOCKERFILE + "RUN sleep 14\n", files={"hello.txt": prefix + "\n"})
    buildout.configure(part(prefix, base_image, extra="timeout = 3"))
    started = time.monotonic()
    result = buildout.fails()
    assert "did not finish within 3" in result.error_line(), result.output
    made = step_images(result.output)
    assert made, result.output  # the COPY step's
    time.sleep(max(0.0, 16 - (time.monotonic() - started)))  # the step is over
    context(buildout, files={"hello.txt": prefix + "\n"})  # no sleep: the build works
    buildout.ok()
    assert existing(made) == []


def test_build_previous_image_kept_while_used(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    context(buildout)
    buildout.configure(part(prefix, base_image))
    buildout.ok()
    first = image_id(ref)
    docker("create", "--name", prefix + "-user", ref, "true")
    buildout.write("ctx/hello.txt", "changed\n")
    result = buildout.ok()
    assert "Keeping the previous image" in result.output and prefix + "-user" in result.output
    assert image_id(ref) != first
    assert inspect("image", first) is not None
    docker("rm", prefix + "-user")
    docker("image", "rm", first)


def test_build_foreign_tag_and_keep(buildout, prefix, base_image):
    ref = prefix + "-img:v1"
    docker("tag", base_image, ref)  # someone else's image under our name
    context(buildout)
    buildout.configure(part(prefix, base_image, extra="keep = true"))
    buildout.ok()
    assert image_id(ref) != image_id(base_image)
    assert image_id(base_image) is not None  # not ours: not removed
    buildout.uninstall_all()
    assert inspect("image", ref) is not None, "keep = true must leave the image"


def test_build_remote_context(buildout, prefix, base_image, tmp_path):
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "Dockerfile").write_text(DOCKERFILE)
    (remote / "hello.txt").write_text("from afar\n")
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(str(served / "ctx.tar.gz"), "w:gz") as tar:
        tar.add(str(remote), arcname=".")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/ctx.tar.gz" % server.server_address[1]
        buildout.configure(part(prefix, base_image, source=url))
        buildout.ok()
        assert cat(prefix + "-img:v1", "/ctx/hello.txt") == "from afar\n"
        result = buildout.ok()
        assert "nothing to build" in result.output
    finally:
        server.shutdown()


def test_build_bad_options(buildout, prefix, base_image):
    context(buildout)
    cases = [
        ({"source": "missing-dir"}, "'source'"),
        ({"source": "ctx/Dockerfile"}, "'source'"),  # a file, not a directory
        ({"source": None}, "'source'"),  # required
        ({"build-args": "BASE"}, "'build-args'"),
        ({"no-cache": "maybe"}, "'no-cache'"),
        ({"pull": "perhaps"}, "'pull'"),
        ({"dockerfile": "Nope"}, "'dockerfile'"),
        ({"target": "two words"}, "'target'"),
        ({"platform": "linux/amd64 linux/arm64"}, "'platform'"),
        ({"labels": "novalue"}, "'labels'"),
        ({"keep": "maybe"}, "'keep'"),
        ({"timeout": "later"}, "'timeout'"),
        ({"name": "Upper/Case:x"}, "'name'"),
        ({"name": "x@sha256:" + "a" * 64}, "'name'"),
    ]
    for changes, needle in cases:
        options = {"name": prefix + "-bad", "source": "ctx", "build-args": "BASE=" + base_image}
        options.update(changes)
        body = "\n".join("%s = %s" % (k, v) for k, v in options.items() if v is not None)
        buildout.configure("[bad]\nrecipe = dockeroo:docker.build\n%s\n" % body)
        result = buildout.fails()
        line = result.error_line()
        assert "Part [bad]" in line and needle in line, (changes, result.output)
        assert "Building image" not in result.output
        assert inspect("image", prefix + "-bad") is None
    # a part name that is no image name, with no name option
    buildout.configure("[Bad_Part]\nrecipe = dockeroo:docker.build\nsource = ctx\n")
    line = buildout.fails().error_line()
    assert "Part [Bad_Part]" in line and "'name'" in line and "defaults to the part name" in line
