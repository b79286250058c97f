pytest_plugins = [
    "tests.fixtures.core",
]
