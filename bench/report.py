"""The benchmark's one table: each budget beside its measured figure and PASS/MISS."""

from dataclasses import dataclass

PASS, MISS, NOT_MEASURED = "PASS", "MISS", "not measured"


@dataclass
class Row:
    budget: str
    measured: str
    passed: bool | None  # None: not measured
    note: str = ""

    @property
    def result(self) -> str:
        if self.passed is None:
            return NOT_MEASURED
        return PASS if self.passed else MISS


def render(title: list[str], rows: list[Row]) -> str:
    headers = ("Budget", "Measured", "Result")
    width_budget = max(len(headers[0]), *(len(r.budget) for r in rows))
    width_measured = max(len(headers[1]), *(len(r.measured) for r in rows))
    width_result = max(len(headers[2]), *(len(r.result) for r in rows))

    def line(a, b, c):
        return f"| {a:<{width_budget}} | {b:<{width_measured}} | {c:<{width_result}} |"

    rule = f"|{'-' * (width_budget + 2)}|{'-' * (width_measured + 2)}|{'-' * (width_result + 2)}|"
    out = [*title, "", line(*headers), rule]
    out.extend(line(r.budget, r.measured, r.result) for r in rows)
    notes = [(i, r.note) for i, r in enumerate(rows, 1) if r.note]
    if notes:
        out += ["", "Notes (by row):"]
        out += [f"{i:>3}. {note}" for i, note in notes]
    passed = sum(1 for r in rows if r.passed)
    missed = sum(1 for r in rows if r.passed is False)
    skipped = sum(1 for r in rows if r.passed is None)
    out += ["", f"{passed} PASS, {missed} MISS, {skipped} not measured."]
    return "\n".join(out) + "\n"
