"""DockerEngine.with_timeout: a part's view of the shared engine."""

from dockeroo.engine.capabilities import Capabilities
from dockeroo.engine.process import DEFAULT_TIMEOUT
from dockeroo.engine.docker import DockerEngine


def test_timeout_view_shares_the_inspect_cache():
    engine = DockerEngine(docker="/nonexistent/docker")
    view = engine.with_timeout(2)
    assert engine.with_timeout(None) is engine
    assert view.inspect_timeout == 2 and engine.inspect_timeout == DEFAULT_TIMEOUT
    view.want("container", "a")
    assert engine._pending["container"] == {"a"}
    engine._cache["image"]["x"] = {"Id": "sha256:x"}
    assert view.image_id("x") == "sha256:x"
    engine._facts["capabilities"] = Capabilities.from_version({"Server": {"Arch": "arm64"}})
    assert view.architecture() == "arm64"
    assert view.capabilities is engine.capabilities
