"""mailboxadmin is the shared layer: the feature apps build on it, never the reverse."""

import ast
from pathlib import Path

import mailboxadmin

FEATURE_APPS = ("mailboxes", "serverprofiles")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_shared_layer_imports_no_feature_app():
    root = Path(mailboxadmin.__file__).parent
    offending = {
        f"{path.relative_to(root)}: {module}"
        for path in root.rglob("*.py")
        if "tests" not in path.relative_to(root).parts
        for module in imported_modules(path)
        if module.split(".")[0] in FEATURE_APPS
    }
    assert offending == set()
