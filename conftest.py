pytest_plugins = [
    "tests.fixtures.core",
    "tests.fixtures.ui",
    "tests.fixtures.browser",
    "tests.fixtures.mailservers",
    "tests.fixtures.oauth_server",
    "tests.fixtures.admin",
    "tests.fixtures.commands",
    "tests.fixtures.faults",
    "tests.fixtures.emails",
]
