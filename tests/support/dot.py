"""Reading the Graphviz DOT ``dockeroo plan --graph`` prints (the subset it writes)."""

import re

NODE_RE = re.compile(r'^\s*"([^"]+)" \[label="((?:[^"\\]|\\.)*)"')
EDGE_RE = re.compile(r'^\s*"([^"]+)" -> "([^"]+)" \[label="([^"]*)"(.*)\];$')


def parse_dot(text):
    """{node id: label lines}, [(user, used, relation, attributes)], clusters' labels."""
    nodes, edges, clusters = {}, [], []
    assert text.startswith("digraph dockeroo {") and text.rstrip().endswith("}")
    for line in text.splitlines():
        edge = EDGE_RE.match(line)
        if edge:
            edges.append(edge.groups())
            continue
        node = NODE_RE.match(line)
        if node:
            nodes[node.group(1)] = [x.replace('\\"', '"') for x in node.group(2).split("\\l") if x]
        elif line.strip().startswith("label="):
            clusters.append(line.strip()[7:-2])
    return nodes, edges, clusters
