"""CheckOS Chalice app: creates the app, registers blueprints and scheduled functions."""

from chalice import Chalice

from chalicelib.web import accounts, company, orders, outbox, pages, security, users

app = Chalice(app_name="checkos")
app.api.binary_types.append("multipart/form-data")
app.api.binary_types.extend(company.BINARY_TYPES)

app.register_blueprint(security.bp)
app.register_blueprint(accounts.bp)
app.register_blueprint(outbox.bp)
app.register_blueprint(users.bp)
app.register_blueprint(company.bp)
app.register_blueprint(orders.bp)
app.register_blueprint(pages.bp)  # last: its /{proxy+} answers the 404 page
