import os
from pathlib import Path

import pytest
import yaml
from mjml import mjml2html

from projections.templates import TEMPLATES_ROOT, SecurityError, TemplateError, TemplateStore

DEMO = TEMPLATES_ROOT.parent / "demo.yaml"

MJML = """<mjml>
  <mj-head><mj-title>{{ job_count }} jobs for {{ lead.first_name | default("you") }} &amp; co</mj-title></mj-head>
  <mj-body>
    {% for job in jobs %}
    <mj-section><mj-column>
      <mj-text>{% if job.position < 2 %}<b>Top</b> {% endif %}<a href="{{ job.link }}">{{ job.title }}</a></mj-text>
      <mj-button href="{{ job.link | default("https://t.example/none") }}">Apply</mj-button>
    </mj-column></mj-section>
    {% endfor %}
    <mj-include path="_partials/footer.mjml" />
  </mj-body>
</mjml>
"""
FOOTER = """<mj-section><mj-column>
  <mj-text>{{ tenant.postal_address }} <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text>
</mj-column></mj-section>
"""
TEXT = """{% for job in jobs %}{{ job.title }} {{ job.link }}
{% endfor %}{% include "_partials/footer.txt.j2" %}"""
TEXT_FOOTER = "{{ tenant.postal_address }} {{ unsubscribe_url }}\n"
SMS = "{{ tenant.name }}: {{ jobs[0].title }} {{ link }}\nReply STOP to opt out\n"
DATA = {"jobs": [{"title": "A <b>", "link": "https://t.example/c/1", "position": 1},
                 {"title": "B", "link": "https://t.example/c/2", "position": 2}],
        "job_count": 2, "lead": {}, "tenant": {"name": "T", "postal_address": "1 Main St"},
        "unsubscribe_url": "https://t.example/u/3", "subject": "s"}


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    write(tmp_path, "default/default.mjml", MJML)
    write(tmp_path, "default/default.txt.j2", TEXT)
    write(tmp_path, "default/default.sms.j2", SMS)
    write(tmp_path, "_partials/footer.mjml", FOOTER)
    write(tmp_path, "_partials/footer.txt.j2", TEXT_FOOTER)
    return tmp_path


class CountingCompiler:
    """mjml2html, counting calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self, source: str, **kw) -> str:
        self.calls += 1
        return mjml2html(source, **kw)


@pytest.fixture
def compiler() -> CountingCompiler:
    return CountingCompiler()


@pytest.fixture
def store(root, compiler) -> TemplateStore:
    return TemplateStore(root, compile_mjml=compiler, check_interval_s=0)


def edit(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))


def test_jinja_tags_survive_the_mjml_compile(store):
    t = store.email("acme", "daily")
    html = t.render_html(DATA)
    assert "<b>Top</b> <a href=\"https://t.example/c/1\">A &lt;b&gt;</a>" in html
    assert 'href="https://t.example/c/2"' in html and "Top</b> <a href=\"https://t.example/c/2\"" not in html
    assert "@media" in html and "<mj-" not in html and "{%" not in html
    assert t.render_subject(DATA) == "2 jobs for you & co"  # title unescaped: a header is not HTML
    assert t.render_text(DATA) == ("A <b> https://t.example/c/1\nB https://t.example/c/2\n"
                                   "1 Main St https://t.example/u/3")


def test_compiles_once_per_version(store, compiler, root):
    first = store.email("acme", "daily")
    for _ in range(5):
        assert store.email("acme", "daily") is first
    assert compiler.calls == store.compiles == 1
    edit(root / "default/default.mjml", MJML.replace("Apply", "Apply now"))
    second = store.email("acme", "daily")
    assert second.version != first.version and compiler.calls == 2
    assert "Apply now" in second.render_html(DATA)
    assert store.email("acme", "daily") is second and compiler.calls == 2


def test_a_touch_without_change_does_not_recompile(store, compiler, root):
    first = store.email("acme", "daily")
    edit(root / "default/default.mjml", MJML)
    assert store.email("acme", "daily") is first and compiler.calls == 1


def test_partials_are_part_of_the_version(store, root):
    before = store.email("acme", "daily").version
    edit(root / "_partials/footer.mjml", FOOTER.replace("Unsubscribe", "Stop these emails"))
    after = store.email("acme", "daily")
    assert after.version != before and "Stop these emails" in after.render_html(DATA)
    assert after.files == ("default/default.mjml", "_partials/footer.mjml",
                           "default/default.txt.j2", "_partials/footer.txt.j2")


def test_a_same_size_edit_right_after_a_load_is_seen(store, root):
    # Two writes inside one mtime tick keep size and (maybe) mtime: the store re-hashes recent files.
    path = root / "default/default.sms.j2"
    before, stat = store.sms("acme", "texts"), path.stat()
    path.write_text(SMS.replace("STOP", "Stop"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same inode, size and mtime
    after = store.sms("acme", "texts")
    assert after.version != before.version and "Reply Stop" in after.render(DATA | {"link": "L"})


def test_tenant_file_overrides_default_and_is_picked_up(store, root):
    default = store.sms("acme", "texts")
    assert default.files == ("default/default.sms.j2",)
    write(root, "acme/texts.sms.j2", "Acme! {{ link }}\nReply STOP to opt out\n")
    own = store.sms("acme", "texts")
    assert own.files == ("acme/texts.sms.j2",) and own.version != default.version
    assert own.render({"link": "L"}).startswith("Acme! L")
    assert store.sms("other", "texts").files == ("default/default.sms.j2",)


def test_check_interval_spares_the_disk(root, compiler):
    store = TemplateStore(root, compile_mjml=compiler, check_interval_s=3600)
    first = store.email("acme", "daily")
    edit(root / "default/default.mjml", MJML.replace("Apply", "Go"))
    assert store.email("acme", "daily") is first  # seen at the next check, not on every send


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__ }}",
    "{{ jobs.append(1) }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ tenant.__class__.__subclasses__() }}",
])
def test_sandbox_escapes_raise_security_error_at_render(store, root, attack):
    write(root, "acme/texts.sms.j2", f"{attack} {{{{ link }}}} Reply STOP\n")
    t = store.sms("acme", "texts")  # loads: the attack is valid syntax
    with pytest.raises(SecurityError):
        t.render(DATA | {"link": "L"})


def test_sandbox_escape_in_email_html_raises_too(store, root):
    write(root, "acme/daily.mjml", MJML.replace("Apply", "{{ ''.__class__.__mro__[1].__subclasses__() }}"))
    t = store.email("acme", "daily")
    with pytest.raises(SecurityError):
        t.render_html(DATA)


def test_syntax_error_names_file_and_line(store, root):
    bad = write(root, "acme/daily.mjml", MJML.replace("{{ job.title }}", "{{ job.title | }}"))
    with pytest.raises(TemplateError) as err:
        store.email("acme", "daily")
    assert err.value.file == str(bad) and err.value.line == 6
    assert str(err.value).startswith(f"{bad} line 6: ")


def test_syntax_error_in_a_partial_names_the_partial(store, root):
    bad = write(root, "_partials/footer.txt.j2", "ok\n{{ unsubscribe_url }\n")
    with pytest.raises(TemplateError) as err:
        store.email("acme", "daily")
    assert err.value.file == str(bad) and err.value.line == 2


def test_sms_syntax_error_names_file(store, root):
    bad = write(root, "acme/texts.sms.j2", "{% if link %}{{ link }}\n")
    with pytest.raises(TemplateError, match=f"^{bad} line"):
        store.sms("acme", "texts")


def test_invalid_mjml_names_file(store, root):
    bad = write(root, "acme/daily.mjml", MJML.replace("</mj-column></mj-section>", "</mj-section>"))
    with pytest.raises(TemplateError, match=f"^{bad}: MJML: "):
        store.email("acme", "daily")


def test_email_template_needs_a_title_for_the_subject(store, root):
    write(root, "acme/daily.mjml", MJML.replace("<mj-head>", "<mj-head><!--").replace("</mj-title>", "-->"))
    with pytest.raises(TemplateError, match="needs <mj-title>"):
        store.email("acme", "daily")


@pytest.mark.parametrize("text,complaint", [
    ('{% extends "x" %}', "extends"),
    ('{% import "x" as y %}', "import"),
])
def test_no_file_access_from_templates(store, root, text, complaint):
    write(root, "acme/texts.sms.j2", text + "\n")
    with pytest.raises(TemplateError, match=f"line 1: {{% {complaint} %}} is not supported"):
        store.sms("acme", "texts")


def test_includes_stay_inside_the_templates_folder(store, root, tmp_path_factory):
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("s3cret")
    write(root, "acme/texts.sms.j2", f'{{% include "../{secret.parent.name}/secret.txt" %}}')
    with pytest.raises(TemplateError, match="is not a file under"):
        store.sms("acme", "texts")


@pytest.mark.parametrize("tenant,list_name", [("../etc", "x"), ("acme", "../../passwd"), ("Acme", "x"), ("", "x")])
def test_ids_cannot_walk_paths(store, tenant, list_name):
    with pytest.raises(ValueError):
        store.email(tenant, list_name)


def test_missing_default_is_a_clear_error(tmp_path):
    with pytest.raises(TemplateError, match="no default/default.sms.j2 to fall back on"):
        TemplateStore(tmp_path).sms("acme", "texts")


def test_every_demo_list_has_its_own_template_for_its_channel():
    store = TemplateStore()
    book = yaml.safe_load(DEMO.read_text())
    for tenant_id, tenant in book["tenants"].items():
        for list_name, cfg in tenant["lists"].items():
            t = store.email(tenant_id, list_name) if cfg["channel"] == "email" else store.sms(tenant_id, list_name)
            assert t.files[0].startswith(f"{tenant_id}/{list_name}."), t.files
    assert store.compiles == sum(cfg["channel"] == "email" for t in book["tenants"].values()
                                 for cfg in t["lists"].values())


def test_a_statement_mjml_would_copy_is_refused(store, root):
    # mj-attributes defaults are copied into every element: a {% %} there would repeat.
    attrs = '<mj-attributes><mj-text color="{% if lead.city %}#111111{% else %}#222222{% endif %}" /></mj-attributes>'
    bad = write(root, "acme/daily.mjml", MJML.replace("</mj-title>", "</mj-title>" + attrs))
    with pytest.raises(TemplateError, match="MJML dropped or duplicated the Jinja tag") as err:
        store.email("acme", "daily")
    assert err.value.file == str(bad) and err.value.line == 2
