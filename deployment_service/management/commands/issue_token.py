from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = "Create USERNAME if missing and print only its API token (for `Authorization: Token …`)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--staff", action="store_true", help="Make the user staff (sees every pipeline, admin).")

    def handle(self, *args, username: str, staff: bool, **options):
        User = get_user_model()
        field = User._meta.get_field(User.USERNAME_FIELD)
        try:
            field.clean(username, None)
        except Exception as exc:
            raise CommandError(f"invalid username {username!r}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
        with transaction.atomic():
            user, created = User.objects.get_or_create(**{User.USERNAME_FIELD: username})
            if created:
                user.set_unusable_password()
            if staff and not user.is_staff:
                user.is_staff = True
                user.is_superuser = True
            user.save()
            token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(token.key)
