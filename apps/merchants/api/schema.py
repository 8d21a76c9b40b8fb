from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.merchants.api.authentication.APIKeyAuthentication"
    name = "AlmaAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Alma-Auth sk_test_…` or `Bearer sk_test_…` (sk_live_… for live).",
        }


class MerchantIdAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "apps.merchants.api.authentication.MerchantIdAuthentication"
    name = "AlmaMerchantAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Alma-Merchant-Auth merchant_…`: the public merchant id, for "
            "browser calls to POST /v2/payments/eligibility only (CORS allowed).",
        }
