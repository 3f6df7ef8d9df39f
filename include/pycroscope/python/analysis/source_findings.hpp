#pragma once
// The source pass of the findings: a Python script run by the profiled
// program's own interpreter, whose `ast` parses each profiled file and
// returns the candidate sites and function definitions as JSON (read by
// analysis/source_facts.hpp). Only syntax is read here; the Profile decides
// what each site costs (analysis/findings.hpp).
//
// The script is kept in pieces below 4095 characters, the longest string
// literal ISO C++ promises; source_findings_script() joins them.

#include "pycroscope/analysis/source_facts.hpp"
#include "pycroscope/python/runtime/cpython.hpp"
#include "pycroscope/python/runtime/python_source.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace pycroscope {
namespace python {

namespace source_findings_detail {
inline constexpr const char* const script[] = {
    R"source_findings(import ast, json, os, sys, sysconfig, tokenize

LOOPS = (ast.For, ast.AsyncFor, ast.While)
COMPS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
INVARIANT_CALLS = {"len", "sorted", "sum", "min", "max", "abs", "set", "frozenset", "tuple", "list", "dict"}
INVARIANT_MODULES = {"math", "re", "os.path"}
IMPURE = {"print", "next", "input", "open", "iter", "id", "setattr", "delattr", "exec", "eval", "time",
          "perf_counter", "monotonic", "random", "randint", "randrange", "uniform", "choice", "choices",
          "shuffle", "sample", "append", "extend", "pop", "popleft", "appendleft", "insert", "remove",
          "clear", "add", "update", "discard", "write", "writelines", "read", "readline", "readlines", "send",
          "recv", "put", "get_nowait", "sleep", "acquire", "release", "wait", "flush", "close", "sort",
          "reverse", "setdefault", "popitem", "seek", "tell", "urandom", "uuid4", "now", "run", "submit"}
MUTATORS = {"append", "extend", "pop", "insert", "remove", "clear", "add", "update", "discard", "sort",
            "reverse", "setdefault", "popitem", "appendleft", "popleft", "__setitem__", "__delitem__"}
TERMINAL = (ast.Return, ast.Raise, ast.Continue, ast.Break)
CHEAP = {"range", "len", "isinstance", "issubclass", "getattr", "hasattr", "type", "int", "float", "bool", "str",
         "repr", "abs", "super", "enumerate", "zip", "reversed", "iter", "format", "ord", "chr", "round"}


def _library_roots():
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            path = sysconfig.get_paths().get(key)
        except Exception:
            path = None
        if path:
            roots.add(os.path.realpath(path))
    return sorted(roots)


def _is_library(path, roots):
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(real == r or real.startswith(r + os.sep) for r in roots)


def _names(node):
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
    return out


def _stored(node):
    """Names bound or mutated inside node (targets, augmented, mutating method receivers, del)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            out.add(n.id)
        elif isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, (ast.Store, ast.Del)):
            base = n.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                out.add(base.id)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS:
            base = n.func.value
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                out.add(base.id)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            pass
    return out


def _dotted(func):
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
        return ".".join(reversed(parts))
    return None


)source_findings",
    R"source_findings(def _text(node):
    try:
        text = ast.unparse(node)
    except Exception:
        return "?"
    return text if len(text) <= 80 else text[:77] + "..."


def _complexity(fn):
    score = 1
    stack = list(_children(fn))
    while stack:
        n = stack.pop()
        if isinstance(n, SCOPES):
            continue
        if isinstance(n, (ast.If, ast.For, ast.AsyncFor, ast.While, ast.IfExp, ast.ExceptHandler, ast.Assert)):
            score += 1
        elif isinstance(n, ast.BoolOp):
            score += len(n.values) - 1
        elif isinstance(n, ast.comprehension):
            score += 1 + len(n.ifs)
        elif hasattr(ast, "match_case") and isinstance(n, ast.match_case):
            score += 1
        stack.extend(_children(n))
    return score


class _Scope:
    """One function (or the module): its kinds of local names."""

    def __init__(self, node, qualname, first_line):
        self.node = node
        self.qualname = qualname
        self.first_line = first_line
        self.lists = set()
        self.strings = set()
        self.deques = set()
        self.globals_declared = set()
        self.other = set()  # names bound to something else at least once

    def learn(self, body_nodes):
        for n in body_nodes:
            for sub in _walk_scope(n):
                if isinstance(sub, ast.Assign):
                    for t in sub.targets:
                        if isinstance(t, ast.Name):
                            self._bind(t.id, sub.value)
                elif isinstance(sub, ast.AnnAssign) and isinstance(sub.target, ast.Name) and sub.value is not None:
                    self._bind(sub.target.id, sub.value)
                elif isinstance(sub, ast.Global):
                    self.globals_declared.update(sub.names)
        self.lists -= self.other
        self.strings -= self.other
        self.deques -= self.other

    def _bind(self, name, value):
        if isinstance(value, (ast.List, ast.ListComp)) or (
                isinstance(value, ast.Call) and _dotted(value.func) in ("list", "sorted")):
            self.lists.add(name)
        elif (isinstance(value, ast.Constant) and isinstance(value.value, str)) or isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Call) and _dotted(value.func) == "str"):
            self.strings.add(name)
        elif isinstance(value, ast.Call) and _dotted(value.func) in ("deque", "collections.deque"):
            self.deques.add(name)
        else:
            self.other.add(name)


def _children(node):
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, ast.AST):
                    yield item
        elif isinstance(value, ast.AST):
            yield value


def _walk_scope(node):
    """node and its descendants, not entering nested functions, lambdas or classes."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(child for child in _children(n) if not isinstance(child, SCOPES))


class _FileAnalysis:
    def __init__(self, tree, path):
        self.tree = tree
        self.path = path
        self.sites = []
        self.functions = []
        self.module_vars = set()
        self.module_defs = set()
        for stmt in tree.body:
            self._module_binding(stmt)

    def _module_binding(self, stmt):
)source_findings",
    R"source_findings(        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        self.module_vars.add(n.id)
        elif isinstance(stmt, (ast.If, ast.Try, ast.With)):
            for child in _children(stmt):
                if isinstance(child, ast.stmt):
                    self._module_binding(child)

    def site(self, kind, node, scope, detail, end=None):
        line = node.lineno
        end_line = end if end is not None else (getattr(node, "end_lineno", None) or line)
        self.sites.append([kind, line, end_line, scope.qualname, scope.first_line, detail])

    def run(self):
        module = _Scope(self.tree, "<module>", 0)
        module.learn(self.tree.body)
        self._scope(self.tree, module, "")
        self._unused_imports()

    def _scope(self, node, scope, prefix):
        body = node.body if not isinstance(node, ast.Lambda) else []
        self._unreachable(node, scope)
        self._visit_block(body, scope, loops=[])
        for child in _children_scopes(node):
            if isinstance(child, FUNCS):
                qual = prefix + child.name
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                inner = _Scope(child, qual, first)
                inner.learn(child.body)
                self.functions.append([qual, first, child.lineno, child.end_lineno or child.lineno,
                                       _complexity(child)])
                self._scope(child, inner, qual + ".<locals>.")
            elif isinstance(child, ast.ClassDef):
                cls_scope = _Scope(child, prefix + child.name, child.lineno)
                self._scope(child, cls_scope, prefix + child.name + ".")

    # -- blocks and loops ------------------------------------------------
    def _visit_block(self, stmts, scope, loops):
        for stmt in stmts:
            self._visit_stmt(stmt, scope, loops)
        self._redundant_calls(stmts, scope)

    def _visit_stmt(self, stmt, scope, loops):
        if isinstance(stmt, SCOPES):
            return
        if isinstance(stmt, LOOPS):
            if loops and scope.node is not self.tree:
                self.site("nested_loop", stmt, scope,
                          "loop at line %d inside the loop at line %d" % (stmt.lineno, loops[-1].lineno))
            self._expressions(stmt, scope, loops, header=True)
            inner = loops + [stmt]
            self._visit_block(stmt.body, scope, inner)
            self._visit_block(stmt.orelse, scope, loops)
            if scope.node is not self.tree:
                self._loop_checks(stmt, scope, outermost=not loops)
            return
        if isinstance(stmt, ast.Try) or (hasattr(ast, "TryStar") and isinstance(stmt, ast.TryStar)):
            if loops and scope.node is not self.tree:
                self.site("exception_in_loop", stmt, scope,
                          "try/except inside the loop at line %d" % loops[-1].lineno)
        if loops:
            self._expressions(stmt, scope, loops, header=False)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                self._visit_block(block, scope, loops)
)source_findings",
    R"source_findings(        for handler in getattr(stmt, "handlers", []) or []:
            self._visit_block(handler.body, scope, loops)
        for case in getattr(stmt, "cases", []) or []:
            self._visit_block(case.body, scope, loops)

    def _own_expressions(self, stmt):
        """The expressions of stmt itself, not of the statements it contains."""
        for field, value in ast.iter_fields(stmt):
            if field in ("body", "orelse", "finalbody", "handlers", "cases"):
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, (ast.expr, ast.withitem, ast.keyword, ast.arg)):
                    yield v

    def _expressions(self, stmt, scope, loops, header):
        in_function = scope.node is not self.tree
        for expr in self._own_expressions(stmt):
            for n in _walk_scope(expr):
                if isinstance(n, ast.Compare):
                    self._membership(n, scope, loops)
                elif isinstance(n, COMPS):
                    for gen in n.generators:
                        for cond in gen.ifs:
                            for c in _walk_scope(cond):
                                if isinstance(c, ast.Compare):
                                    self._membership(c, scope, loops, comprehension=True)
                elif isinstance(n, ast.Call) and in_function and not header:
                    self._front_op(n, scope)
        if header or not in_function:
            return
        target = None
        if isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add) and isinstance(stmt.target, ast.Name):
            target, value = stmt.target.id, stmt.value
        elif (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
              and isinstance(stmt.value, ast.BinOp) and isinstance(stmt.value.op, ast.Add)
              and isinstance(stmt.value.left, ast.Name) and stmt.value.left.id == stmt.targets[0].id):
            target, value = stmt.targets[0].id, stmt.value.right
        if target is not None:
            is_str = target in scope.strings or isinstance(value, ast.JoinedStr) or (
                isinstance(value, ast.Constant) and isinstance(value.value, str))
            if is_str and target not in scope.lists:
                self.site("string_concat_in_loop", stmt, scope, "%s += ... builds a string one piece at a time" % target)

    def _membership(self, node, scope, loops, comprehension=False):
        if not loops and not comprehension:
            return
        for op, right in zip(node.ops, node.comparators):
            if not isinstance(op, (ast.In, ast.NotIn)):
                continue
            if isinstance(right, (ast.List, ast.ListComp)) and (len(getattr(right, "elts", [])) > 4 or isinstance(right, ast.ListComp)):
                self.site("membership_in_list", node, scope, "`%s` searches a list" % _text(node))
            elif isinstance(right, ast.Name) and (right.id in scope.lists or (
                    right.id not in scope.other and right.id not in scope.strings and right.id in self.module_lists)):
                self.site("membership_in_list", node, scope, "`%s` searches the list %s" % (_text(node), right.id))

    def _front_op(self, call, scope):
        func = call.func
        if not isinstance(func, ast.Attribute) or func.attr not in ("pop", "insert") or not call.args:
            return
        first = call.args[0]
)source_findings",
    R"source_findings(        if not (isinstance(first, ast.Constant) and first.value == 0 and not isinstance(first.value, bool)):
            return
        if func.attr == "pop" and len(call.args) != 1:
            return
        if func.attr == "insert" and len(call.args) != 2:
            return
        base = func.value
        if isinstance(base, ast.Name) and base.id in scope.deques:
            return
        self.site("list_front_ops", call, scope, "%s shifts every element of the list" % _text(call))

    def _loop_checks(self, loop, scope, outermost):
        changed = _stored(loop)  # targets, assignments, mutations in the loop
        # invariant calls in the body
        for stmt in loop.body:
            if isinstance(stmt, LOOPS):
                continue  # the inner loop gets its own check
            for expr in self._stmt_tree_exprs(stmt):
                self._invariant(expr, changed, scope, loop)
        if not outermost:
            return
        # globals read in the loop (and its inner loops)
        seen = set()
        for n in _walk_scope(loop):
            if isinstance(n, ast.Name) and n.id not in seen:
                is_global = n.id in scope.globals_declared or (
                    isinstance(n.ctx, ast.Load) and n.id in self.module_vars and n.id not in scope.lists
                    and n.id not in scope.strings and n.id not in scope.other and n.id not in scope.deques
                    and n.id not in _params(scope.node) and n.id not in changed)
                if is_global:
                    seen.add(n.id)
                    self.site("global_in_loop", n, scope,
                              "global %s read in the loop at line %d" % (n.id, loop.lineno))

    def _stmt_tree_exprs(self, stmt):
        """Expressions of stmt and its nested non-loop statements."""
        for expr in self._own_expressions(stmt):
            yield expr
        for field in ("body", "orelse", "finalbody"):
            block = getattr(stmt, field, None)
            if isinstance(block, list):
                for s in block:
                    if isinstance(s, ast.stmt) and not isinstance(s, LOOPS + SCOPES):
                        yield from self._stmt_tree_exprs(s)
        for handler in getattr(stmt, "handlers", []) or []:
            for s in handler.body:
                if not isinstance(s, LOOPS + SCOPES):
                    yield from self._stmt_tree_exprs(s)

    def _invariant(self, expr, changed, scope, loop):
        stack = [expr]
        while stack:
            n = stack.pop()
            if isinstance(n, SCOPES + COMPS):
                continue
            if isinstance(n, ast.Call):
                name = _dotted(n.func)
                module = name.rsplit(".", 1)[0] if name and "." in name else None
                known = name in INVARIANT_CALLS or (module in INVARIANT_MODULES)
                if known and (n.args or n.keywords):
                    used = _names(n)
                    if not (used & changed) and all(not isinstance(a, ast.Starred) for a in n.args) and \
                            not any(isinstance(s, (ast.Call,) + COMPS) for a in n.args for s in ast.walk(a)):
                        self.site("loop_invariant", n, scope,
                                  "%s does not change in the loop at line %d" % (_text(n), loop.lineno))
                        continue
            stack.extend(_children(n))

    def _redundant_calls(self, stmts, scope):
        if scope.node is self.tree:
            return
)source_findings",
    R"source_findings(        seen = {}
        for stmt in stmts:
            if isinstance(stmt, SCOPES):
                continue
            for expr in self._own_expressions(stmt):
                for n in _walk_scope(expr):
                    if not isinstance(n, ast.Call) or not n.args:
                        continue
                    name = _dotted(n.func)
                    if name is None or name.rsplit(".", 1)[-1] in IMPURE or name in CHEAP:
                        continue
                    if any(isinstance(s, (ast.Call, ast.Starred, ast.NamedExpr) + COMPS) for a in n.args + [k.value for k in n.keywords] for s in ast.walk(a)):
                        continue
                    key = ast.dump(n)
                    first = seen.get(key)
                    if first is not None:
                        self.site("redundant_call", n, scope,
                                  "%s was already computed on line %d" % (_text(n), first))
                    else:
                        seen[key] = n.lineno
            if not seen:
                continue
            if not isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign, ast.Return)):
                seen = {}  # a compound statement or a jump: start again
                continue
            changed = _stored(stmt)
            if changed:
                if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and not any(
                        isinstance(s, ast.Call) and isinstance(s.func, ast.Attribute) and s.func.attr in MUTATORS
                        for s in ast.walk(stmt)):
                    seen = {k: v for k, v in seen.items() if not (_key_names(k) & changed)}
                else:
                    seen = {}

    def _unreachable(self, node, scope):
        for block in _blocks(node):
            for i, stmt in enumerate(block[:-1]):
                if isinstance(stmt, TERMINAL):
                    rest = block[i + 1:]
                    self.sites.append(["dead_code", rest[0].lineno, rest[-1].end_lineno or rest[-1].lineno,
                                       scope.qualname, scope.first_line,
                                       "unreachable: after the %s on line %d" % (type(stmt).__name__.lower(),
                                                                                stmt.lineno)])
                    break

    def _unused_imports(self):
        if os.path.basename(self.path) == "__init__.py":
            return
        used = set()
        exported = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store):
                used.add(n.id)
            elif isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets):
                for c in ast.walk(n.value):
                    if isinstance(c, ast.Constant) and isinstance(c.value, str):
                        exported.add(c.value)
        module = _Scope(self.tree, "<module>", 0)
        for n in ast.walk(self.tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                if isinstance(n, ast.ImportFrom) and n.module == "__future__":
                    continue
                for alias in n.names:
                    if alias.name == "*":
                        continue
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound not in used and bound not in exported:
)source_findings",
    R"source_findings(                        self.site("unused_import", n, module, "%s is imported but never used" % bound)

    @property
    def module_lists(self):
        if not hasattr(self, "_module_lists"):
            m = _Scope(self.tree, "<module>", 0)
            m.learn(self.tree.body)
            self._module_lists = m.lists
        return self._module_lists


def _params(fn):
    args = getattr(fn, "args", None)
    if args is None:
        return set()
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    if args.vararg:
        names.add(args.vararg.arg)
    if args.kwarg:
        names.add(args.kwarg.arg)
    return names


def _key_names(dump):
    return set(part.split("'")[1] for part in dump.split("Name(id=")[1:])


def _children_scopes(node):
    out = []
    stack = list(_children(node))
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.append(n)
        elif not isinstance(n, ast.Lambda):
            stack.extend(_children(n))
    out.sort(key=lambda n: n.lineno)
    return out


def _blocks(node):
    """Every statement list of node's own scope."""
    stack = [node]
    while stack:
        n = stack.pop()
        for field in ("body", "orelse", "finalbody"):
            block = getattr(n, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block
                stack.extend(s for s in block if not isinstance(s, SCOPES))
        for h in getattr(n, "handlers", []) or []:
            yield h.body
            stack.extend(s for s in h.body if not isinstance(s, SCOPES))
        for c in getattr(n, "cases", []) or []:
            yield c.body
            stack.extend(s for s in c.body if not isinstance(s, SCOPES))


def analyse(files, include_libraries):
    roots = _library_roots()
    out = []
    for path in files:
        entry = {"file": path, "skipped": "", "sites": [], "functions": []}
        out.append(entry)
        if not include_libraries and _is_library(path, roots):
            entry["skipped"] = "library"
            continue
        try:
            with tokenize.open(path) as f:
                source = f.read()
            tree = ast.parse(source, filename=path)
        except (OSError, SyntaxError, ValueError, UnicodeDecodeError) as error:
            entry["skipped"] = "unreadable: %s" % (error,)
            continue
        analysis = _FileAnalysis(tree, path)
        analysis.run()
        entry["sites"] = sorted(analysis.sites, key=lambda s: (s[1], s[0], s[2]))
        entry["functions"] = analysis.functions
    return json.dumps(out)
)source_findings"};
} // namespace source_findings_detail

inline std::string source_findings_script() {
    std::string text;
    for (const char* piece : source_findings_detail::script) {
        text += piece;
    }
    return text;
}

namespace source_findings_detail {

inline analysis::SourceFacts run(const std::vector<std::string>& files, bool include_libraries) {
    PyObject* globals = run_in_fresh_namespace(source_findings_script().c_str(), "<pycroscope source pass>");
    if (globals == nullptr) {
        throw std::runtime_error("source pass: " + take_python_error());
    }
    PyObject* result = nullptr;
    std::string failure;
    PyObject* list = PyList_New(0);
    for (const std::string& file : files) {
        PyObject* name = PyUnicode_DecodeFSDefaultAndSize(file.data(), static_cast<Py_ssize_t>(file.size()));
        if (list == nullptr || name == nullptr || PyList_Append(list, name) != 0) {
            Py_XDECREF(name);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(name);
    }
    PyObject* analyse = PyDict_GetItemString(globals, "analyse"); // borrowed
    if (list != nullptr && analyse != nullptr) {
        result = PyObject_CallFunction(analyse, "OO", list, include_libraries ? Py_True : Py_False);
    }
    Py_XDECREF(list);
    std::string json;
    if (result != nullptr && PyUnicode_Check(result)) {
        Py_ssize_t size = 0;
        const char* utf8 = PyUnicode_AsUTF8AndSize(result, &size);
        if (utf8 != nullptr) {
            json.assign(utf8, static_cast<std::size_t>(size));
        }
    }
    if (json.empty()) {
        failure = PyErr_Occurred() != nullptr ? take_python_error() : std::string("no result");
    }
    Py_XDECREF(result);
    Py_DECREF(globals);
    if (!failure.empty()) {
        throw std::runtime_error("source pass: " + failure);
    }
    return analysis::parse_source_facts(json);
}
} // namespace source_findings_detail

// The facts of files, from the running interpreter (takes the GIL itself).
// Throws std::runtime_error when the interpreter is not running or the
// script fails; a file that cannot be read or parsed is skipped, and said so.
inline analysis::SourceFacts collect_source_facts(const std::vector<std::string>& files, bool include_libraries) {
    if (!Py_IsInitialized()) {
        throw std::runtime_error("source pass: the Python interpreter is not running");
    }
    const auto start = std::chrono::steady_clock::now();
    const PyGILState_STATE gil = PyGILState_Ensure();
    // The program's own exception, if one is pending, is kept for it.
    PyObject *type = nullptr, *value = nullptr, *trace = nullptr;
    PyErr_Fetch(&type, &value, &trace);
    analysis::SourceFacts facts;
    std::string failure;
    try {
        facts = source_findings_detail::run(files, include_libraries);
    } catch (const std::exception& error) {
        failure = error.what();
    }
    PyErr_Restore(type, value, trace);
    PyGILState_Release(gil);
    if (!failure.empty()) {
        throw std::runtime_error(failure);
    }
    facts.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return facts;
}

} // namespace python
} // namespace pycroscope
