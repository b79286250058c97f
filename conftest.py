pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.commands",
]
