"""docker.run / docker.copy option parsing and command lines (no engine)."""

import io
import tarfile

import pytest
from zc.buildout import UserError

from dockeroo.base import tarstream
from support.tars import list_names
from dockeroo.runtime.container import ContainerSpec, _CopyJob
from dockeroo.model.options import Options
from dockeroo.model.options import parse_path_line
from dockeroo.recipes.run import _check_port, container_ip
from dockeroo.model.buildout import referenced_outputs


def opts():
    return Options("p", {})


@pytest.mark.parametrize("line", ["80", "8080:80", "127.0.0.1:8080:80", "127.0.0.1::80",
                                  "53/udp", "1000-1010:2000-2010/tcp", "[::1]:8080:80"])
def test_ports_accepted(line):
    assert _check_port(opts(), line) == line


@pytest.mark.parametrize("line", ["http", "80:", "0", "65536", "1:2:3:4", "80/icmp",
                                  "999.1.1.1:80:80", "8080 80"])
def test_ports_refused(line):
    with pytest.raises(UserError) as info:
        _check_port(opts(), line)
    assert "Part [p], option 'ports'" in str(info.value)


@pytest.mark.parametrize("line,pair", [
    ("/lib/", ("/lib/", "/lib")),
    ("/bin/sh", ("/bin/sh", "/bin/sh")),
    ("/bin/sh /bin/bash", ("/bin/sh", "/bin/bash")),
    ("/bin/sh /usr/bin/", ("/bin/sh", "/usr/bin/sh")),
    ("/lib/ /opt/", ("/lib/", "/opt/lib")),
    ('"/a b/c" "/d e"', ("/a b/c", "/d e")),
])
def test_copy_path_lines(line, pair):
    assert parse_path_line(opts(), line) == pair


@pytest.mark.parametrize("line", ["lib", "/a /b /c", "/", "/a/../b", "/a relative", "'/a"])
def test_copy_path_lines_refused(line):
    with pytest.raises(UserError) as info:
        parse_path_line(opts(), line)
    assert "option 'paths'" in str(info.value)


def test_copy_jobs_direct_only_when_the_name_is_kept():
    assert _CopyJob("/lib/", "/lib").direct
    assert _CopyJob("/usr/lib", "/opt/lib").direct
    assert not _CopyJob("/bin/sh", "/bin/bash").direct
    with pytest.raises(ValueError):
        _CopyJob("/", "/x")


def test_copy_job_renamers():
    assert _CopyJob("/bin/sh", "/bin/bash").renamer()("sh") == "bin/bash"
    rename = _CopyJob("/usr/lib/", "/opt/lib64").renamer()
    assert rename("lib/x/y") == "opt/lib64/x/y" and rename("other") is None
    onto_root = _CopyJob("/build/root/", "/").renamer()  # the content lands on /
    assert onto_root("root") is None and onto_root("root/usr/bin") == "./usr/bin"


def test_create_args_are_an_argv():
    spec = ContainerSpec(name="c", image="img:1", command=["sh", "-c", "echo a; b"],
                         entrypoint=["/init", "--"], env={"A": "x y"}, network="n1",
                         network_aliases=["www"], stop_timeout=0, tty=True)
    args = spec.create_args()
    assert args[:3] == ["create", "--name", "c"]
    assert args[args.index("img:1"):] == ["img:1", "--", "sh", "-c", "echo a; b"]
    assert ["--entrypoint", "/init"] == args[args.index("--entrypoint"):args.index("--entrypoint") + 2]
    assert "A=x y" in args and "--tty" in args and ["--stop-timeout", "0"] == \
        args[args.index("--stop-timeout"):args.index("--stop-timeout") + 2]


def test_referenced_outputs_reads_the_raw_configuration():
    class FakeBuildout:
        _raw = {"a": {"recipe": "x", "name": "n"},
                "b": {"env": "IP=${a:ip-address}\nID=${a:container-id}", "x": "${ab:ip-address}"}}
    assert referenced_outputs(FakeBuildout(), "a", ("container-id", "ip-address")) == \
        {"container-id", "ip-address"}
    assert referenced_outputs(FakeBuildout(), "b", ("ip-address",)) == set()


def test_container_ip():
    obj = {"NetworkSettings": {"IPAddress": "", "Networks": {
        "n1": {"IPAddress": "172.30.1.2"}, "n2": {"IPAddress": "172.30.2.2"}}}}
    assert container_ip(obj, "n2") == "172.30.2.2"
    assert container_ip({"NetworkSettings": {"IPAddress": "172.17.0.3", "Networks": {}}}) == \
        "172.17.0.3"
    assert container_ip({}) == ""


def test_retarget_many_writes_one_archive():
    def archive(*names):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in names:
                info = tarfile.TarInfo(name)
                info.size = 1
                tar.addfile(info, io.BytesIO(b"x"))
        buf.seek(0)
        return buf

    out = io.BytesIO()
    tarstream.retarget_many([(archive("sh"), tarstream.prefix_renamer("sh", "bin/bash")),
                             (archive("d", "d/f"), tarstream.prefix_renamer("d", "opt/e"))], out)
    out.seek(0)
    assert list_names(out) == ["bin/bash", "opt/e", "opt/e/f"]
