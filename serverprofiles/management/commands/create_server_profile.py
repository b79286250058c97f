from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction

from mailboxadmin.commands import (
    ScriptCommand,
    add_actor_argument,
    add_password_arguments,
    add_secret_arguments,
    command_actor,
    one_line,
    read_password,
    read_secret,
)
from mailboxes.config import codes
from mailboxes.config.document import renamed
from serverprofiles.models import AuthenticationMethod, EmailServerProfile, OAuthProvider, ServerType
from serverprofiles.services import profile_create

# Validation errors name model fields; the person at the terminal knows the flags.
FLAGS = {
    "name": "--name",
    "server_type": "--server-type",
    "incoming_server": "--incoming-server",
    "incoming_port": "--incoming-port",
    "outgoing_server": "--outgoing-server",
    "outgoing_port": "--outgoing-port",
    "incoming_auth": "--auth",
    "outgoing_auth": "--auth",
    "incoming_username": "--username",
    "incoming_password": "--password-stdin/--password-env",
    "incoming_password_ciphertext": "--password-stdin/--password-env",
    "max_connections": "--max-connections",
    "allow_unencrypted_credentials": "--allow-unencrypted-credentials",
    "oauth_provider": "--oauth-provider",
    "oauth_tenant_id": "--oauth-tenant-id",
    "oauth_token_url": "--oauth-token-url",
    "oauth_client_id": "--oauth-client-id",
    "oauth_scope": "--oauth-scope",
    "oauth_client_secret": "--client-secret-stdin/--client-secret-env",
    "oauth_service_account_key": "--client-secret-stdin/--client-secret-env",
}


class Command(ScriptCommand):
    help = (
        "Create an email server profile: where the mail servers are and how connections "
        "authenticate. Outgoing connections use the same settings as incoming ones; ports "
        "left out are filled from the protocol and SSL (IMAP 993/143, POP3 995/110, SMTP "
        "465/587). A profile's own password (--auth profile-credentials) is read from "
        "standard input or an environment variable, never from the command line."
    )
    example = """
        manage.py create_server_profile --name "Contoso IMAP" --server-type imap-smtp \\
            --incoming-server imap.contoso.test --outgoing-server smtp.contoso.test \\
            --auth user-credentials --default

        PROFILE_PASSWORD=... manage.py create_server_profile --name "Contoso shared" \\
            --server-type imap-smtp --incoming-server imap.contoso.test \\
            --outgoing-server smtp.contoso.test --auth profile-credentials \\
            --username mailer@contoso.test --password-env PROFILE_PASSWORD

        CLIENT_SECRET=... manage.py create_server_profile --name "Microsoft 365" \\
            --server-type exchange-online --auth server-to-server --oauth-provider microsoft \\
            --oauth-tenant-id contoso.onmicrosoft.com --oauth-client-id APP-ID \\
            --client-secret-env CLIENT_SECRET
    """

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The profile's name (unique).")
        parser.add_argument(
            "--server-type", required=True, choices=codes.SERVER_TYPES, help="Email Server Type."
        )
        parser.add_argument(
            "--incoming-server",
            metavar="HOST",
            default="",
            help="Incoming Server Location: a host name, or an https URL for Exchange.",
        )
        parser.add_argument("--incoming-port", metavar="N", type=int, help="Incoming Port (1–65535).")
        parser.add_argument(
            "--outgoing-server",
            metavar="HOST",
            default="",
            help="Outgoing Server Location: a host name, or an https URL for Exchange.",
        )
        parser.add_argument("--outgoing-port", metavar="N", type=int, help="Outgoing Port (1–65535).")
        parser.add_argument(
            "--auth",
            choices=codes.AUTH_METHODS,
            default=AuthenticationMethod.USER_CREDENTIALS,
            help="Authenticate Using, for incoming and outgoing connections (default: user-credentials).",
        )
        parser.add_argument(
            "--no-ssl",
            action="store_true",
            help="Do not use implicit TLS (STARTTLS is used where the server offers it).",
        )
        parser.add_argument(
            "--allow-unencrypted-credentials",
            action="store_true",
            help="Allow credentials over unencrypted connections: send passwords even where the "
            "server offers no TLS. Off by default; only a System Administrator (--actor) may set it.",
        )
        parser.add_argument(
            "--username",
            metavar="U",
            default="",
            help="The profile's user name (with --auth profile-credentials).",
        )
        add_password_arguments(parser, what="the profile's password (with --auth profile-credentials)")
        parser.add_argument(
            "--oauth-provider",
            choices=OAuthProvider.values,
            default="",
            help="OAuth Provider (with --auth oauth2; Exchange Online is always microsoft).",
        )
        parser.add_argument("--oauth-tenant-id", metavar="T", default="", help="Tenant ID (Microsoft 365).")
        parser.add_argument(
            "--oauth-token-url", metavar="URL", default="", help="Token URL (Other; Google optionally)."
        )
        parser.add_argument("--oauth-client-id", metavar="ID", default="", help="Client ID.")
        parser.add_argument(
            "--oauth-scope", metavar="S", default="", help="Scope (default: the provider's, see SPEC 7)."
        )
        add_secret_arguments(
            parser,
            name="client-secret",
            what="the OAuth client secret (Google: the service account's JSON key)",
        )
        parser.add_argument(
            "--max-connections",
            metavar="N",
            type=int,
            help="Maximum Concurrent Connections (1–300, default 10).",
        )
        parser.add_argument(
            "--default", action="store_true", help="Make it the default profile for new mailboxes."
        )
        add_actor_argument(parser)

    def handle(self, *args, **options):
        name = options["name"]
        record = f'email server profile "{name}"'
        actor = command_actor(options, "serverprofiles.add_emailserverprofile")
        try:
            password = read_password(options)
            client_secret = read_secret(options, name="client-secret")
        except CommandError as error:
            raise CommandError(f"{record}: {error}") from None
        auth = options["auth"]
        if (options["username"] or password) and auth != AuthenticationMethod.PROFILE_CREDENTIALS:
            raise CommandError(
                f"{record}: --username and a password are the profile's own credentials; "
                "they need --auth profile-credentials."
            )
        profile = EmailServerProfile(
            name=name,
            server_type=options["server_type"],
            incoming_server=options["incoming_server"],
            incoming_port=options["incoming_port"],
            outgoing_server=options["outgoing_server"],
            outgoing_port=options["outgoing_port"],
            incoming_auth=auth,
            use_same_settings_for_outgoing=True,
            incoming_ssl=not options["no_ssl"],
            outgoing_ssl=not options["no_ssl"],
            incoming_username=options["username"],
            allow_unencrypted_credentials=options["allow_unencrypted_credentials"],
            oauth_provider=options["oauth_provider"],
            oauth_tenant_id=options["oauth_tenant_id"],
            oauth_token_url=options["oauth_token_url"],
            oauth_client_id=options["oauth_client_id"],
            oauth_scope=options["oauth_scope"],
        )
        if client_secret and not profile.uses_oauth:
            raise CommandError(
                f"{record}: a client secret is for OAuth 2.0; it needs --auth oauth2 (or Exchange "
                "Online with --auth server-to-server)."
            )
        if options["max_connections"] is not None:
            profile.max_connections = options["max_connections"]
        try:
            if password:
                profile.set_incoming_password(password)
            if client_secret:
                profile.normalize()  # Exchange Online's provider is Microsoft's
                profile.set_oauth_secret(client_secret)
            with transaction.atomic():
                profile_create(
                    profile, make_default=options["default"], actor=actor, via="create_server_profile"
                )
        except ValidationError as error:
            raise CommandError(one_line(renamed(error, FLAGS), record=record)) from None

        where = (
            f"incoming {profile.incoming_server or 'auto-discovered'}"
            + (f":{profile.incoming_port}" if profile.incoming_port else "")
            + f", outgoing {profile.outgoing_server or 'auto-discovered'}"
            + (f":{profile.outgoing_port}" if profile.outgoing_port else "")
        )
        default = ", the default for new mailboxes" if options["default"] else ""
        self.stdout.write(
            f'Created email server profile "{profile.name}" ({ServerType(profile.server_type).label}; '
            f"{where}; authenticate using {AuthenticationMethod(profile.incoming_auth).label}){default}."
        )
