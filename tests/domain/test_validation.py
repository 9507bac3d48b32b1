import pytest

from domain.validation import check_email, check_phone, check_routing, suppression_keys


def test_valid_email_is_normalised(tenant):
    c = check_email("  Ann.Smith@EXAMPLE.com ", tenant, "US")
    assert c.reasons == () and c.address == "ann.smith@example.com" and c.domain == "example.com"


@pytest.mark.parametrize("raw", ["not-an-email", "a@b", "two@@at.com", "sp ace@x.com", "", "a@-x.com"])
def test_malformed_emails_are_invalid(tenant, raw):
    assert check_email(raw, tenant, None).reasons == ("invalid_email",)


def test_disposable_domain_is_rejected_unless_the_tenant_allows_it(tenant):
    assert check_email("x@mailinator.com", tenant, None).reasons == ("disposable_email",)
    lenient = tenant.model_copy(update={"validation": tenant.validation.model_copy(
        update={"reject_disposable": False})})
    assert check_email("x@mailinator.com", lenient, None).reasons == ()


def test_email_from_a_country_outside_the_tenant_is_rejected(tenant):
    assert check_email("a@example.com", tenant, "FR").reasons == ("country_not_allowed",)
    assert check_email("a@example.com", tenant, "ca").reasons == ()


def test_mobile_phone_with_consent_is_valid_with_region_and_timezone(tenant):
    c = check_phone("(415) 555-2671", tenant, has_consent=True)
    assert c.reasons == () and c.address == "+14155552671"
    assert c.region == "US" and c.timezone == "America/Los_Angeles"


def test_new_york_number_gets_new_york_time(tenant):
    assert check_phone("+1 212 555 2671", tenant, True).timezone == "America/New_York"


@pytest.mark.parametrize("raw", ["12", "abc", "+1 000 000 0000", "+999 1234"])
def test_bad_phones_are_invalid(tenant, raw):
    assert check_phone(raw, tenant, True).reasons == ("invalid_phone",)


def test_sms_without_consent_is_rejected(tenant):
    assert check_phone("(415) 555-2671", tenant, has_consent=False).reasons == ("missing_sms_consent",)


def test_landline_is_not_mobile_and_foreign_country_not_allowed(tenant):
    c = check_phone("+44 20 7946 0018", tenant, True)
    assert set(c.reasons) == {"not_mobile", "country_not_allowed"}
    assert c.timezone == "Europe/London"


def test_routing_checks_channel_list_and_partner(tenant):
    assert check_routing(tenant, "email", "daily", "feed") == ()
    assert check_routing(tenant, "email", "nope", "feed") == ("unknown_list",)
    assert check_routing(tenant, "sms", "daily", "feed") == ("list_channel_mismatch",)
    assert check_routing(tenant, "email", "daily", "stranger") == ("unknown_partner",)
    email_only = tenant.model_copy(update={"channels": ["email"]})
    assert "channel_not_allowed" in check_routing(email_only, "sms", "texts", "feed")


def test_suppression_keys_include_the_email_domain(tenant):
    c = check_email("ann@Spam.example", tenant, None)
    assert suppression_keys(c, "email") == ["ann@spam.example", "@spam.example"]
    assert suppression_keys(check_phone("(415) 555-2671", tenant, True), "sms") == ["+14155552671"]


TRICKY = ["ann@example.com", "Ann.Smith+jobs@Example.COM", "a..b@example.com", ".a@example.com",
          "a.@example.com", "\"quoted local\"@example.com", "x@example.com.", "ünï@example.com",
          "ann@bücher.example", "ann@BÜCHER.example", "a" * 64 + "@example.com", "a" * 65 + "@example.com",
          "ann@" + "d" * 250 + ".com", "ann@exa_mple.com", "ann@-example.com", "ann@example",
          "ann@[127.0.0.1]", "o'brien@example.com", "a/b=c@example.com", "ann@example..com",
          "ann @example.com", "ann@mailinator.com", "tab\t@example.com", "ann@example.com\n"]


@pytest.mark.parametrize("raw", TRICKY)
def test_the_fast_path_agrees_with_email_validator(raw):
    from email_validator import EmailNotValidError, validate_email

    from domain.validation import _VALID_DOMAINS, normalise_email

    def slow():
        try:
            v = validate_email(raw.strip(), check_deliverability=False)
            return f"{v.local_part.lower()}@{v.ascii_domain.lower()}"
        except EmailNotValidError:
            return "invalid"

    def fast():
        try:
            return normalise_email(raw)[0]
        except EmailNotValidError:
            return "invalid"

    _VALID_DOMAINS.clear()
    cold = fast()
    for warm_up in ("someone@example.com", "someone@bücher.example", "someone@mailinator.com"):
        fast_ok = normalise_email(warm_up)  # the memo now knows these domains
    assert _VALID_DOMAINS and fast_ok
    assert cold == fast() == slow()
