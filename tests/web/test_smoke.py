from __future__ import annotations


def test_pages_render_for_each_role(client, login_as, make_ticket):
    number, _ = make_ticket("assigned")
    for role, pages in {
        "clerk": ["/desk/intake", "/desk/categorize", f"/tickets/{number}", "/workflow", "/inbox"],
        "officer": ["/my/queue", "/unit/queue", f"/tickets/{number}"],
        "unit_leader": ["/unit/queue", f"/tickets/{number}"],
        "supervisor": [
            "/supervisor/board",
            "/supervisor/extensions",
            "/supervisor/reopen-requests",
            f"/tickets/{number}",
            "/inspector/log",
        ],
        "inspector": ["/inspector/log", "/inspector/sample", f"/tickets/{number}"],
    }.items():
        client.cookie_jar.clear() if hasattr(client, "cookie_jar") else None
        client.delete_cookie("session")
        login_as(role)
        for page in pages:
            r = client.get(page)
            assert r.status_code == 200, (role, page, r.get_data(as_text=True)[:2000])
