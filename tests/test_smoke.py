from tests.support import login, register


async def test_register_then_dashboard(client):
    form = await register(client)
    response = await client.get("/portal")
    assert response.status_code == 200
    assert form["company_name"] in response.text
    await login(client, form["email"])
