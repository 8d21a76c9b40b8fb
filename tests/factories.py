import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.merchants.models import Membership, Merchant


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    email = factory.Sequence(lambda n: f"staff{n}@shop.example")
    username = factory.SelfAttribute("email")
    password = factory.django.Password("correct horse battery staple")


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    legal_name = factory.Sequence(lambda n: f"Boutique {n}")
    country = "FR"
    website = factory.Sequence(lambda n: f"https://boutique{n}.example")
    contact_email = factory.Sequence(lambda n: f"owner{n}@shop.example")
    created_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    merchant = factory.SubFactory(MerchantFactory)
    role = Membership.Role.OWNER
    created_at = factory.LazyFunction(timezone.now)
