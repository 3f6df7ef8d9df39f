"""A realistic script: a small template engine (compiled to Python
closures) renders HTML pages for a catalogue, escaping every value, the way
a web framework renders a page per request."""

import html
import re

TOKEN = re.compile(r"\{\{\s*([\w.]+)\s*\}\}|\{%\s*(for|endfor)\s*(?:(\w+)\s+in\s+([\w.]+))?\s*%\}")


def lookup(context, dotted):
    value = context
    for part in dotted.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part)
    return value


def compile_template(source):
    """Returns render(context) built from text, variable and loop nodes."""
    pos = 0
    stack = [[]]
    loops = []
    for match in TOKEN.finditer(source):
        stack[-1].append(("text", source[pos:match.start()]))
        pos = match.end()
        if match.group(1):
            stack[-1].append(("var", match.group(1)))
        elif match.group(2) == "for":
            loops.append((match.group(3), match.group(4)))
            stack.append([])
        else:
            body = stack.pop()
            name, seq = loops.pop()
            stack[-1].append(("for", name, seq, body))
    stack[-1].append(("text", source[pos:]))
    return lambda context: "".join(render_nodes(stack[0], context))


def render_nodes(nodes, context):
    for node in nodes:
        kind = node[0]
        if kind == "text":
            yield node[1]
        elif kind == "var":
            yield html.escape(str(lookup(context, node[1])))
        else:
            _, name, seq, body = node
            for item in lookup(context, seq):
                inner = dict(context)
                inner[name] = item
                yield from render_nodes(body, inner)


class Product:
    def __init__(self, ident, name, price, tags):
        self.ident = ident
        self.name = name
        self.price = price
        self.tags = tags

    @property
    def label(self):
        return "{} <#{}> ({:.2f} EUR)".format(self.name, self.ident, self.price)


PAGE = """<html><head><title>{{ shop.title }}</title></head><body>
<h1>{{ shop.title }} & friends</h1><ul>
{% for p in products %}<li id="p{{ p.ident }}">{{ p.label }}<ul>{% for t in p.tags %}<li>{{ t }}</li>{% endfor %}</ul></li>
{% endfor %}</ul><footer>{{ shop.footer }}</footer></body></html>"""


def main():
    render = compile_template(PAGE)
    products = [Product(i, "item '%d'" % i, i * 1.25, ["tag<%d>" % (i % 7), "sale", "new" if i % 3 else "old"])
                for i in range(200)]
    total = 0
    for request in range(1100):
        context = {"shop": {"title": "Shop #%d" % request, "footer": "\u00a9 2026 <shop>"},
                   "products": products[request % 50:request % 50 + 120]}
        total += len(render(context))
    print(total)


main()
