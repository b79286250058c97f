"""What apply_config did, or in a dry run would do: one entry per record of the file."""

from dataclasses import dataclass, field


@dataclass
class PlanEntry:
    section: str
    index: int | None
    record: str
    action: str  # create | update | unchanged
    fields: list[str] = field(default_factory=list)

    def __str__(self):
        line = f"{self.action:<9} {self.record}"
        return f"{line}: {', '.join(self.fields)}" if self.fields else line


@dataclass
class Plan:
    entries: list[PlanEntry]

    def count(self, action: str) -> int:
        return sum(1 for entry in self.entries if entry.action == action)

    @property
    def changes(self) -> int:
        return len(self.entries) - self.count("unchanged")
