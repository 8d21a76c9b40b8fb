from apps.common.api.throttling import APIKeyRateThrottle
from apps.common.api.views import BaseAPIView
from apps.merchants.api.authentication import APIKeyAuthentication, IsActiveMerchant


class MerchantAPIView(BaseAPIView):
    """A merchant API endpoint: secret-key auth, active merchant, per-key rate limit.

    ``self.merchant`` and ``self.request.auth.livemode`` scope every selector call.
    """

    authentication_classes = [APIKeyAuthentication]
    permission_classes = [IsActiveMerchant]
    throttle_classes = [APIKeyRateThrottle]

    @property
    def merchant(self):
        return self.request.user
