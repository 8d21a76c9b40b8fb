"""The team page: members, invitations, roles, removal; who may do what."""

import re
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from apps.common.models import OutgoingEmail
from apps.merchants import services
from apps.merchants.models import Membership, MerchantEvent
from tests.conftest import make_shop
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

ROLE = Membership.Role


@pytest.fixture
def sending(monkeypatch, django_capture_on_commit_callbacks):
    """``with sending():`` sends the emails queued inside at its end, as a commit would
    (django-q2 runs the send task in-process)."""
    monkeypatch.setattr(Conf, "SYNC", True)
    mail.outbox.clear()
    return lambda: django_capture_on_commit_callbacks(execute=True)


def member(shop, role, **user_fields) -> Membership:
    return MembershipFactory(merchant=shop.merchant, role=role, **user_fields)


def owner_membership(shop) -> Membership:
    return Membership.objects.get(merchant=shop.merchant, user=shop.owner)


def logged_in(client, user) -> Client:
    client.force_login(user)
    return client


def invite(client, email, role="staff"):
    return client.post(
        reverse("merchants:staff"), {"email": email, "role": role}, HTTP_ACCEPT_LANGUAGE="en"
    )


# --- the list -------------------------------------------------------------------------


def test_the_team_page_lists_each_member_with_name_email_role_and_date(client, shop):
    shop.owner.first_name, shop.owner.last_name = "Léa", "Martin"
    shop.owner.save()
    clerk = member(shop, ROLE.STAFF, user__email="paul@shop.example")

    page = logged_in(client, shop.owner).get(reverse("merchants:staff"), HTTP_ACCEPT_LANGUAGE="en")

    html = page.content.decode()
    assert page.status_code == 200
    assert [row["member"] for row in page.context["rows"]] == [owner_membership(shop), clerk]
    assert "Léa Martin" in html and shop.owner.email in html
    assert "paul@shop.example" in html
    assert "Owner" in html and "Staff" in html
    assert f'datetime="{timezone.localtime(clerk.created_at).isoformat()}"' in html


def test_the_team_page_speaks_french_by_default(client, shop):
    page = logged_in(client, shop.owner).get(reverse("merchants:staff"))

    assert page["Content-Language"] == "fr"
    assert page.status_code == 200


def test_a_staff_member_sees_the_team_but_no_actions(client, shop):
    clerk = member(shop, ROLE.STAFF)
    admin = member(shop, ROLE.ADMIN)

    page = logged_in(client, clerk.user).get(reverse("merchants:staff"))

    html = page.content.decode()
    assert admin.user.email in html
    assert "<form" not in html.split('<main id="content"')[1]  # no invite, role or resend form
    assert reverse("merchants:staff-remove", args=[admin.pk]) not in html
    assert reverse("merchants:staff-role", args=[admin.pk]) not in html


def test_a_staff_member_cannot_act_even_by_posting(client, shop):
    clerk = member(shop, ROLE.STAFF)
    other = member(shop, ROLE.STAFF)
    client = logged_in(client, clerk.user)

    responses = [
        invite(client, "new@shop.example"),
        client.post(reverse("merchants:staff-role", args=[other.pk]), {"role": "admin"}),
        client.get(reverse("merchants:staff-remove", args=[other.pk])),
        client.post(reverse("merchants:staff-remove", args=[other.pk])),
        client.post(reverse("merchants:staff-resend", args=[other.pk])),
    ]

    assert [response.status_code for response in responses] == [403] * 5
    assert Membership.objects.filter(merchant=shop.merchant).count() == 3
    assert Membership.objects.get(pk=other.pk).role == ROLE.STAFF
    assert not get_user_model().objects.filter(email="new@shop.example").exists()


# --- invitations ----------------------------------------------------------------------


def test_inviting_a_new_email_creates_a_login_without_password_and_emails_a_link(
    client, shop, sending
):
    with sending():
        response = invite(logged_in(client, shop.owner), "Nina@Shop.example", role="admin")

    user = get_user_model().objects.get(username="nina@shop.example")
    membership = Membership.objects.get(merchant=shop.merchant, user=user)
    assert response.status_code == 302
    assert membership.role == ROLE.ADMIN
    assert not user.has_usable_password()
    event = MerchantEvent.objects.get(merchant=shop.merchant, kind="staff_invited")
    assert (event.actor, event.detail) == (shop.owner, "nina@shop.example (admin)")
    [message] = mail.outbox
    assert message.to == ["nina@shop.example"]
    assert shop.merchant.legal_name in message.subject
    assert "/accounts/reset/" in message.body


def test_the_invitation_link_sets_a_password_that_then_logs_in(client, shop, sending):
    with sending():
        invite(logged_in(client, shop.owner), "nina@shop.example")
    [message] = mail.outbox
    link = re.search(r"https?://\S+(/accounts/reset/\S+/)", message.body).group(1)
    newcomer = Client()

    form = newcomer.get(link, follow=True)
    newcomer.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    login = newcomer.post(
        reverse("login"),
        {"username": "nina@shop.example", "password": "a brand new passphrase"},
    )
    home = newcomer.get(reverse("merchants:staff"))
    reused = Client().get(link, follow=True)

    assert form.context["validlink"]
    assert login.status_code == 302
    assert home.status_code == 200
    assert home.context["rows"][1]["is_me"]
    assert not reused.context["validlink"]  # the link works once


def test_inviting_someone_who_already_has_a_login_adds_them_without_a_new_account(
    client, shop, other_shop, sending
):
    before = get_user_model().objects.count()

    with sending():
        response = invite(logged_in(client, shop.owner), other_shop.owner.email.upper())

    assert response.status_code == 302
    assert get_user_model().objects.count() == before
    assert Membership.objects.filter(merchant=shop.merchant, user=other_shop.owner).exists()
    assert Membership.objects.filter(merchant=other_shop.merchant, user=other_shop.owner).exists()
    [message] = mail.outbox
    assert "/accounts/reset/" not in message.body
    assert "/accounts/login/" in message.body


def test_inviting_a_member_again_is_a_clear_error(client, shop):
    clerk = member(shop, ROLE.STAFF)

    response = invite(logged_in(client, shop.owner), clerk.user.email)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "email": ["This person is already a member of your team."]
    }
    assert Membership.objects.filter(merchant=shop.merchant).count() == 2
    assert not MerchantEvent.objects.filter(kind="staff_invited").exists()


def test_a_bad_email_is_explained(client, shop):
    response = invite(logged_in(client, shop.owner), "not-an-email")

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"email"}


def test_only_an_owner_makes_administrators(client, shop):
    admin = member(shop, ROLE.ADMIN)
    client = logged_in(client, admin.user)

    page = client.get(reverse("merchants:staff"))
    as_admin = invite(client, "boss@shop.example", role="admin")
    as_staff = invite(client, "clerk@shop.example", role="staff")

    assert [value for value, _label in page.context["form"].fields["role"].choices] == ["staff"]
    assert as_admin.status_code == 200
    assert set(as_admin.context["form"].errors) == {"role"}
    assert as_staff.status_code == 302
    assert Membership.objects.get(user__email="clerk@shop.example").role == ROLE.STAFF
    assert not Membership.objects.filter(user__email="boss@shop.example").exists()


def test_nobody_is_invited_as_owner(shop):
    with pytest.raises(services.StaffNotAllowed):
        services.staff_invite(
            merchant=shop.merchant,
            email="x@shop.example",
            role=ROLE.OWNER,
            actor=owner_membership(shop),
            now=timezone.now(),
        )


def test_an_invitation_can_be_sent_again_while_no_password_is_chosen(client, shop, sending):
    client = logged_in(client, shop.owner)
    with sending():
        invite(client, "nina@shop.example")
    nina = Membership.objects.get(user__email="nina@shop.example")
    clerk = member(shop, ROLE.STAFF)

    with sending():
        again = client.post(reverse("merchants:staff-resend", args=[nina.pk]))
        refused = client.post(
            reverse("merchants:staff-resend", args=[clerk.pk]), HTTP_ACCEPT_LANGUAGE="en"
        )

    assert again.status_code == refused.status_code == 302
    assert [message.to for message in mail.outbox] == [["nina@shop.example"]] * 2
    assert OutgoingEmail.objects.filter(to="nina@shop.example").count() == 2
    followed = client.get(reverse("merchants:staff"), HTTP_ACCEPT_LANGUAGE="en")
    assert "already chosen a password" in followed.content.decode()


# --- roles ----------------------------------------------------------------------------


def test_an_owner_changes_a_members_role(client, shop):
    clerk = member(shop, ROLE.STAFF)

    response = logged_in(client, shop.owner).post(
        reverse("merchants:staff-role", args=[clerk.pk]), {"role": "admin"}
    )

    assert response.status_code == 302
    assert Membership.objects.get(pk=clerk.pk).role == ROLE.ADMIN
    event = MerchantEvent.objects.get(kind="staff_role_changed")
    assert event.detail == f"{clerk.user.email}: staff -> admin"
    assert event.actor == shop.owner


def test_the_last_owner_cannot_be_demoted(client, shop):
    mine = owner_membership(shop)

    response = logged_in(client, shop.owner).post(
        reverse("merchants:staff-role", args=[mine.pk]),
        {"role": "admin"},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )

    assert Membership.objects.get(pk=mine.pk).role == ROLE.OWNER
    assert "at least one owner" in response.content.decode()
    assert not MerchantEvent.objects.filter(kind="staff_role_changed").exists()


def test_with_two_owners_one_may_step_down(client, shop):
    mine = owner_membership(shop)
    member(shop, ROLE.OWNER)

    logged_in(client, shop.owner).post(
        reverse("merchants:staff-role", args=[mine.pk]), {"role": "staff"}
    )

    assert Membership.objects.get(pk=mine.pk).role == ROLE.STAFF


def test_an_administrator_cannot_change_roles(client, shop):
    admin = member(shop, ROLE.ADMIN)
    clerk = member(shop, ROLE.STAFF)
    client = logged_in(client, admin.user)

    promote = client.post(reverse("merchants:staff-role", args=[clerk.pk]), {"role": "admin"})
    demote = client.post(
        reverse("merchants:staff-role", args=[owner_membership(shop).pk]), {"role": "staff"}
    )

    assert promote.status_code == demote.status_code == 403
    assert Membership.objects.get(pk=clerk.pk).role == ROLE.STAFF
    assert owner_membership(shop).role == ROLE.OWNER


def test_a_junk_role_is_explained_not_a_crash(client, shop):
    clerk = member(shop, ROLE.STAFF)

    response = logged_in(client, shop.owner).post(
        reverse("merchants:staff-role", args=[clerk.pk]), {"role": "emperor"}, follow=True
    )

    assert response.status_code == 200
    assert Membership.objects.get(pk=clerk.pk).role == ROLE.STAFF


def test_changing_a_role_is_post_only(client, shop):
    clerk = member(shop, ROLE.STAFF)

    response = logged_in(client, shop.owner).get(reverse("merchants:staff-role", args=[clerk.pk]))

    assert response.status_code == 405


# --- removal --------------------------------------------------------------------------


def test_removing_asks_first_then_takes_the_access_away(client, shop):
    clerk = member(shop, ROLE.STAFF)
    client = logged_in(client, shop.owner)

    confirm = client.get(reverse("merchants:staff-remove", args=[clerk.pk]))
    assert Membership.objects.filter(pk=clerk.pk).exists()
    removed = client.post(reverse("merchants:staff-remove", args=[clerk.pk]))

    assert confirm.status_code == 200
    assert b'method="post"' in confirm.content
    assert removed.status_code == 302
    assert not Membership.objects.filter(pk=clerk.pk).exists()
    assert get_user_model().objects.filter(pk=clerk.user.pk).exists()  # the login stays
    event = MerchantEvent.objects.get(kind="staff_removed")
    assert (event.actor, event.detail) == (shop.owner, clerk.user.email)
    gone = Client()
    gone.force_login(clerk.user)
    assert gone.get(reverse("dashboard:home")).status_code == 403  # "no merchant" page


def test_the_last_owner_cannot_be_removed_even_by_themselves(client, shop):
    mine = owner_membership(shop)
    client = logged_in(client, shop.owner)

    page = client.get(reverse("merchants:staff"))
    response = client.post(
        reverse("merchants:staff-remove", args=[mine.pk]), HTTP_ACCEPT_LANGUAGE="en", follow=True
    )

    assert reverse("merchants:staff-remove", args=[mine.pk]) not in page.content.decode()
    assert Membership.objects.filter(pk=mine.pk).exists()
    assert "at least one owner" in response.content.decode()


def test_an_owner_may_leave_when_another_owner_remains(client, shop):
    mine = owner_membership(shop)
    member(shop, ROLE.OWNER)

    response = logged_in(client, shop.owner).post(reverse("merchants:staff-remove", args=[mine.pk]))

    assert response.status_code == 302
    assert not Membership.objects.filter(pk=mine.pk).exists()


def test_an_administrator_removes_staff_but_not_owners_or_other_admins(client, shop):
    admin = member(shop, ROLE.ADMIN)
    other_admin = member(shop, ROLE.ADMIN)
    clerk = member(shop, ROLE.STAFF)
    client = logged_in(client, admin.user)

    page = client.get(reverse("merchants:staff"))
    staff_removed = client.post(reverse("merchants:staff-remove", args=[clerk.pk]))
    owner_kept = client.post(reverse("merchants:staff-remove", args=[owner_membership(shop).pk]))
    admin_kept = client.post(reverse("merchants:staff-remove", args=[other_admin.pk]))

    html = page.content.decode()
    assert reverse("merchants:staff-remove", args=[clerk.pk]) in html
    assert reverse("merchants:staff-remove", args=[other_admin.pk]) not in html
    assert staff_removed.status_code == 302
    assert owner_kept.status_code == admin_kept.status_code == 403
    assert set(Membership.objects.filter(merchant=shop.merchant)) == {
        owner_membership(shop),
        admin,
        other_admin,
    }


def test_another_merchants_member_is_404(client, shop, other_shop):
    theirs = Membership.objects.get(merchant=other_shop.merchant)
    client = logged_in(client, shop.owner)

    responses = [
        client.post(reverse("merchants:staff-role", args=[theirs.pk]), {"role": "staff"}),
        client.get(reverse("merchants:staff-remove", args=[theirs.pk])),
        client.post(reverse("merchants:staff-remove", args=[theirs.pk])),
        client.post(reverse("merchants:staff-resend", args=[theirs.pk])),
        client.post(reverse("merchants:staff-role", args=[999_999]), {"role": "staff"}),
    ]

    assert [response.status_code for response in responses] == [404] * 5
    assert Membership.objects.get(pk=theirs.pk).role == ROLE.OWNER


def test_a_removed_member_cannot_be_removed_twice(shop):
    clerk = member(shop, ROLE.STAFF)
    services.staff_remove(member=clerk, actor=owner_membership(shop), now=timezone.now())

    with pytest.raises(services.StaffMemberGone):
        services.staff_remove(member=clerk, actor=owner_membership(shop), now=timezone.now())


def test_a_former_manager_can_no_longer_act(shop):
    admin = member(shop, ROLE.ADMIN)
    clerk = member(shop, ROLE.STAFF)
    stale = Membership.objects.get(pk=admin.pk)  # the role as the admin's request read it
    Membership.objects.filter(pk=admin.pk).update(role=ROLE.STAFF)

    with pytest.raises(services.StaffNotAllowed):
        services.staff_remove(member=clerk, actor=stale, now=timezone.now())


@pytest.mark.django_db(transaction=True)
def test_two_owners_removing_each_other_at_once_leave_one_owner():
    shop = make_shop()
    first = owner_membership(shop)
    second = MembershipFactory(merchant=shop.merchant, role=ROLE.OWNER)
    barrier = threading.Barrier(2)
    outcomes = []

    def remove(target, actor):
        try:
            barrier.wait()
            services.staff_remove(member=target, actor=actor, now=timezone.now())
            outcomes.append("removed")
        except (services.StaffLastOwner, services.StaffNotAllowed) as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=remove, args=(second, first)),
        threading.Thread(target=remove, args=(first, second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["removed", "staff_not_allowed"]
    assert Membership.objects.filter(merchant=shop.merchant, role=ROLE.OWNER).count() == 1


def test_one_login_may_join_two_merchants_teams(shop, other_shop):
    for each in (shop, other_shop):
        services.staff_invite(
            merchant=each.merchant,
            email="same@shop.example",
            role=ROLE.STAFF,
            actor=owner_membership(each),
            now=timezone.now(),
        )

    assert get_user_model().objects.filter(username="same@shop.example").count() == 1
    assert Membership.objects.filter(user__username="same@shop.example").count() == 2
