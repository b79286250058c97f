from mailboxadmin.commands import ScriptCommand
from mailboxadmin.encryption import generate_key


class Command(ScriptCommand):
    help = (
        "Print a new Fernet key for FIELD_ENCRYPTION_KEYS. To rotate keys, put the new key first "
        "(FIELD_ENCRYPTION_KEYS=new,old), run rotate_encryption_keys, then drop the old key."
    )

    def handle(self, *args, **options):
        self.stdout.write(generate_key())
