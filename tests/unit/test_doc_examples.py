"""The parser of documentation examples (tests/support/doc_examples.py): a
``...`` line marks the section it ends as shown in part only."""

from support.doc_examples import sections


def test_sections_marks_the_sections_a_dots_line_ends():
    out, partial = sections("""\
...
[db]
recipe = dockeroo:docker.run
image = ${db-image:name}
...

[web]
recipe = dockeroo:docker.run
command = serve
    --port 80
""")
    assert out == {"db": {"recipe": "dockeroo:docker.run", "image": "${db-image:name}"},
                   "web": {"recipe": "dockeroo:docker.run", "command": "serve\n--port 80"}}
    # the leading "..." (before any section) marks nothing; [web] is shown whole
    assert partial == {"db"}


def test_sections_without_dots_has_no_partial_section():
    out, partial = sections("[a]\nx = 1\n# a comment\n[b]\ny = 2\n")
    assert out == {"a": {"x": "1"}, "b": {"y": "2"}}
    assert partial == set()
