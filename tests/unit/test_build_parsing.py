"""docker.build's readers: BuildKit-only Dockerfile features, .dockerignore as Docker reads it."""

from dockeroo.base.fingerprint import IgnoreRules
from dockeroo.recipes.build import buildkit_features, csv_field


def features(tmp_path, text):
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    return buildkit_features(str(path))


def test_buildkit_features(tmp_path):
    assert features(tmp_path, "FROM x\nRUN echo hi\nCOPY --chown=1 --from=a b c\n") == []
    assert features(tmp_path, "# syntax=docker/dockerfile:1\nFROM x\n") == ["a syntax line (line 1)"]
    assert features(tmp_path, "FROM x\n# syntax=late, just a comment\n") == []
    assert features(tmp_path, "FROM x\nRUN \\\n  --mount=type=cache,target=/c true\n") == \
        ["RUN --mount (line 2)"]
    assert features(tmp_path, "FROM x\nCOPY --chmod=644 a b\n") == ["COPY --chmod (line 2)"]
    assert features(tmp_path, "FROM x\nRUN <<EOF\necho\nEOF\n") == ["a heredoc (line 2)"]
    assert features(tmp_path, "FROM x\nRUN echo $((1<<2))\n") == []
    # another escape character
    assert features(tmp_path, "# escape=`\nFROM x\nRUN `\n  --network=none true\n") == \
        ["RUN --network (line 3)"]


def test_dockerignore_lines_as_docker_reads_them():
    rules = IgnoreRules(["\ufeffbom.txt", " # hash.txt", "# comment.txt", "a**c", "dir/**b",
                         "**/*.log", "docs/**"])
    assert rules.excluded("bom.txt")
    assert rules.excluded("# hash.txt")
    assert not rules.excluded("# comment.txt")
    assert not rules.excluded("abc") and rules.excluded("ac") and rules.excluded("a/x/c")
    assert not rules.excluded("dir/x/yb") and rules.excluded("dir/x/b") and rules.excluded("dir/b")
    assert rules.excluded("x.log") and rules.excluded("a/b/x.log")
    assert rules.excluded("docs/a/b") and not rules.excluded("docs")


def test_secret_csv_field():
    assert csv_field("src=/a/b") == "src=/a/b"
    assert csv_field('src=/a,b"c') == '"src=/a,b""c"'


def test_the_images_a_legacy_builds_steps_made_are_read_from_its_output():
    """Not the FROM step's image, not one taken from the cache (recorded output)."""
    from dockeroo.engine.errors import LegacyBuildSteps
    steps = LegacyBuildSteps()
    for line in """Sending build context to Docker daemon  2.048kB
Step 1/5 : ARG BASE
Step 2/5 : FROM ${BASE}
 ---> 0e7ac7d42abc
Step 3/5 : ARG V
 ---> Using cache
 ---> 95263cf46f20
Step 4/5 : RUN echo $V > /v
 ---> Running in 4ac5b1558f6a
Removing intermediate container 4ac5b1558f6a
 ---> c770dee45e6f
Step 5/5 : COPY . /ctx/
 ---> 3b1abfceae5e
The command '/bin/sh -c false' returned a non-zero code: 1""".splitlines():
        steps.feed(line)
    assert steps.images == ["c770dee45e6f", "3b1abfceae5e"]


def test_the_images_a_podman_builds_steps_made_are_read_from_its_output():
    """Podman's lines (recorded from Podman 4.3's compat build)."""
    from dockeroo.engine.errors import LegacyBuildSteps
    steps = LegacyBuildSteps()
    for line in """Sending build context to Docker daemon  3.072kB
STEP 1/5: FROM dockeroo-test/busybox:3d9f2889d678
STEP 2/5: LABEL io.x=y
--> Using cache 45316507e44bcfe3f214e572a7c8d8891290cee07d5e071f0ebd4896c68f104d
--> 45316507e44
STEP 3/5: COPY hello.txt /hello.txt
--> a08b49b2537
STEP 4/5: RUN echo ok
ok
--> 783f018e377
STEP 5/5: RUN echo step-output; false
step-output
building at STEP "RUN echo step-output; false": while running runtime: exit status 1""".splitlines():
        steps.feed(line)
    assert steps.images == ["a08b49b2537", "783f018e377"]
