"""CheckOS Chalice app: creates the app, registers blueprints and scheduled functions."""

from chalice import Chalice

from chalicelib.web import accounts, outbox, pages, security

app = Chalice(app_name="checkos")
app.api.binary_types.append("multipart/form-data")

app.register_blueprint(security.bp)
app.register_blueprint(accounts.bp)
app.register_blueprint(outbox.bp)
app.register_blueprint(pages.bp)  # last: its /{proxy+} answers the 404 page
