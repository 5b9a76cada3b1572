"""The exactness harness itself (tests/support/plan_exact.py): the
classifier of recorded docker argv, and the comparison with a plan."""

from support.plan_exact import classify, compare


def act(kind, name, verb, part="p"):
    return {"part": part, "kind": kind, "name": name, "action": verb, "reasons": []}


def test_read_only_commands_are_left_out():
    assert classify([["inspect", "x"], ["volume", "inspect", "v"], ["ps", "-a"], ["version"],
                     ["image", "ls"], ["network", "ls", "--quiet"]]) == {}


def test_volume_network_and_images():
    effects = classify([
        ["volume", "create", "--driver", "local", "--label", "a=b", "v1"],
        ["volume", "rm", "v0"],
        ["network", "create", "--subnet", "172.28.1.0/24", "--label", "x=y", "n1"],
        ["network", "rm", "n0"],
        ["build", "--tag", "demo:1", "-t", "demo", "--label", "l=v", "ctx"],
        ["image", "rm", "sha256:abc"],
        ["tag", "demo:1", "other:2"],
        ["push", "127.0.0.1:5000/demo:1"],
        ["pull", "busybox"],
        ["import", "--change", "CMD [\"sh\"]", "-", "imported:1"],
    ])
    assert effects == {
        ("volume", "v1"): {"create"}, ("volume", "v0"): {"remove"},
        ("network", "n1"): {"create"}, ("network", "n0"): {"remove"},
        ("image", "docker.io/library/demo:1"): {"build"},
        ("image", "docker.io/library/demo:latest"): {"build"},
        ("image", "sha256:abc"): {"remove"},
        ("image", "docker.io/library/other:2"): {"tag"},
        ("image", "127.0.0.1:5000/demo:1"): {"push"},
        ("image", "docker.io/library/busybox:latest"): {"pull"},
        ("image", "docker.io/library/imported:1"): {"import"},
    }


def test_container_made_under_a_temporary_name_counts_as_its_own():
    effects = classify([
        ["rename", "app", "app-dockeroo-old-0123456789ab"],
        ["create", "--name", "app-dockeroo-new-feedfacecafe", "--label",
         "io.dockeroo.temporary=app-dockeroo-new-feedfacecafe", "img", "sh"],
        ["start", "app-dockeroo-new-feedfacecafe"],
        ["rename", "app-dockeroo-new-feedfacecafe", "app"],
        ["rm", "--force", "--volumes", "app-dockeroo-old-0123456789ab"],
    ])
    assert effects == {("container", "app"): {"set-aside", "create", "start", "complete",
                                              "remove"}}


def test_helper_temporaries_are_ignored():
    effects = classify([
        ["create", "--name", "x_build", "--label", "io.dockeroo.temporary=x_build", "img"],
        ["start", "x_build"], ["exec", "x_build", "sh", "-c", "true"],
        ["cp", "-", "x_build:/tmp"], ["commit", "--change", "CMD x", "x_build", "out:1"],
        ["rm", "--force", "--volumes", "x_build"],
        ["run", "--rm", "img", "true"],
    ])
    assert effects == {("image", "docker.io/library/out:1"): {"commit"}}


def test_unknown_mutating_command_is_reported():
    assert classify([["system", "prune", "-f"]]) == {("unknown", "system prune"): {"unknown"}}


def test_compare_verbs():
    effects = {("volume", "made"): {"create"}, ("volume", "gone"): {"remove"},
               ("container", "app"): {"set-aside", "create", "complete", "remove"},
               ("container", "stopped"): {"start"},
               ("image", "docker.io/library/demo:latest"): {"build"}}
    plan = [act("volume", "made", "create"), act("volume", "gone", "remove"),
            act("container", "app", "recreate"), act("container", "stopped", "repair"),
            act("image", "demo", "recreate"), act("volume", "same", "unchanged")]
    assert compare(plan, effects) == []
    # every wrong verb is found
    wrong = [act("volume", "made", "unchanged"), act("volume", "gone", "update"),
             act("container", "app", "update"), act("container", "stopped", "unchanged"),
             act("image", "demo", "unchanged"), act("volume", "same", "create")]
    assert len(compare(wrong, effects)) == 6
    # an object the plan does not name
    assert compare(plan[1:], effects) == [
        "volume made: not in the plan, the run did create"]
    # unless a part could not plan
    assert compare(plan[1:] + [act("part", "p", "maybe")], effects) == []
    assert compare([act("volume", "made", "maybe")], {("volume", "made"): {"create"}}) == []


def test_an_image_the_run_made_and_removed_by_its_id_is_a_helper():
    made = "sha256:" + "ab" * 32
    argvs = [["import", "--change", "LABEL a=b", "-"], ["image", "rm", made],
             ["image", "rm", "sha256:" + "cd" * 32]]
    effects = classify(argvs, [made])
    assert effects == {("image", "sha256:" + "cd" * 32): {"remove"}}
    # without the printed ids both removals count
    assert len(classify(argvs)) == 2
