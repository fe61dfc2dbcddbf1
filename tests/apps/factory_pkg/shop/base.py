import flask


class ShopApp(flask.Flask):
    shop_name = "corner shop"
