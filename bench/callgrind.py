"""Read a callgrind.out file: total instructions and the cost of entering
a set of functions from outside it.

The format is documented in valgrind's docs (callgrind-format).  Only what
the bench needs is read: function names (fn=/cfn=, with name compression),
cost lines, and the call lines (calls= followed by one cost line that holds
the inclusive cost of that call).  One event (Ir) is assumed, which is what
`valgrind --tool=callgrind` collects by default.
"""

import collections
import re

_COST = re.compile(r"^[0-9+\-*]")


class Profile:
    def __init__(self, path):
        self.path = path
        self.total = None
        self.self_cost = collections.Counter()
        # (caller, callee) -> inclusive cost of the calls on that edge
        self.edges = collections.Counter()
        # (caller, callee) -> number of calls on that edge
        self.calls = collections.Counter()
        self._parse()

    def _parse(self):
        names = {}

        def resolve(spec):
            spec = spec.strip()
            if spec.startswith("("):
                idx, _, rest = spec.partition(")")
                idx = idx[1:]
                rest = rest.strip()
                if rest:
                    names[idx] = rest
                return names.get(idx, "???")
            return spec

        fn = callee = None
        in_call = False
        with open(self.path) as f:
            for line in f:
                if _COST.match(line):
                    fields = line.split()
                    cost = int(fields[1]) if len(fields) > 1 else 0
                    if in_call:
                        self.edges[(fn, callee)] += cost
                        in_call = False
                    else:
                        self.self_cost[fn] += cost
                elif line.startswith("fn="):
                    fn = resolve(line[3:])
                elif line.startswith("cfn="):
                    callee = resolve(line[4:])
                elif line.startswith("calls="):
                    in_call = True
                    self.calls[(fn, callee)] += int(line[6:].split()[0])
                elif line.startswith("summary:") or line.startswith("totals:"):
                    self.total = int(line.split()[1])
        if self.total is None:
            raise RuntimeError("%s has no summary line: the run did not "
                               "finish" % self.path)

    def entry_cost(self, pred):
        """Instructions spent in the functions for which pred(name) holds,
        and in everything they call, counted where the calls come from
        outside that set (so that nested calls are not counted twice)."""
        return sum(cost for (caller, callee), cost in self.edges.items()
                   if pred(callee) and not pred(caller))

    def calls_into(self, name):
        """How many times a function was called from other functions."""
        return sum(n for (caller, callee), n in self.calls.items()
                   if callee == name and caller != name)

    def inclusive(self, name):
        """Inclusive cost of one function (its self cost plus its calls,
        recursion excluded)."""
        return self.self_cost[name] + sum(
            cost for (caller, callee), cost in self.edges.items()
            if caller == name and callee != name)
