"""What both Rekognition detectors share: a client per settings, the checks
before a call, and the call itself. Each detector names its operation, its
image limits, how its settings read, and how to read an answer
(``parse``/``from_stored``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from policy_engine import (
    DetectContext,
    Detector,
    DetectorError,
    DetectorResult,
    Image,
    SettingsFinding,
)
from policy_engine_rekognition.client import (
    CLIENT_SETTINGS_PROPERTIES,
    ClientCache,
    ClientFactory,
    ClientSettings,
    RekognitionClient,
    build_client,
    call_rekognition,
    check_can_call,
)
from policy_engine_rekognition.errors import region_doubt
from policy_engine_rekognition.images import ImageLimits, prepare_image
from policy_engine_rekognition.s3_inputs import build_s3_client, identify_s3_image, parse_s3_uri
from policy_engine_rekognition.s3_screen import screen_s3_object


class CallSettings(Protocol):
    """A detector's settings, as far as calling needs them."""

    @property
    def client(self) -> ClientSettings: ...

    @property
    def convert(self) -> bool: ...

    @property
    def screen_s3(self) -> bool: ...

    def request(self, image: Mapping[str, Any], min_confidence: float) -> dict[str, Any]:
        """The request for ``image``, the request's ``Image`` (``Bytes`` or ``S3Object``)."""
        ...


class RekognitionDetector(Detector):
    """A Rekognition operation as a detector.

    ``client_factory`` replaces how the boto3 client is built (tests inject a
    stubbed client); by default the client comes from the detector settings
    and boto3's own configuration chain.
    """

    operation: ClassVar[str]
    limits: ClassVar[ImageLimits]
    transport_settings: ClassVar[frozenset[str]] = frozenset(CLIENT_SETTINGS_PROPERTIES)

    def __init__(self, *, client_factory: ClientFactory | None = None) -> None:
        self._clients: ClientCache[RekognitionClient] = ClientCache(client_factory or build_client)
        self._s3_clients: ClientCache[Any] = ClientCache(build_s3_client)

    def call_settings(self, context: DetectContext) -> CallSettings:
        raise NotImplementedError

    def preflight(self, context: DetectContext) -> None:
        """No region, no credentials or a missing profile: a
        :class:`~policy_engine.errors.DetectorError` naming what to set,
        without a request. A ``client_factory`` builds its clients its own
        way, and is trusted."""
        settings = self.call_settings(context)
        if self._clients.factory is build_client:
            check_can_call(settings.client)

    def identify(self, image: Image, context: DetectContext) -> Image:
        """An image known by its ``s3://`` URI only, identified by HeadObject
        (with the credentials and region of this detector's settings, as
        Rekognition reads it): the ETag, and on a versioned bucket the current
        version id in the URI, which the request then names."""
        if image.data is not None:
            return image
        s3 = self._s3_clients.get(self.call_settings(context).client)
        return identify_s3_image(image, s3)

    def lint_settings(self, settings: Mapping[str, Any]) -> Sequence[SettingsFinding]:
        """A ``region`` botocore does not know (a typo's endpoint does not exist, so
        every image would get the policy's ``on_error``). Not with an
        ``endpoint_url``, where the region only signs the calls."""
        region = settings.get("region")
        if not isinstance(region, str) or not region.strip() or settings.get("endpoint_url"):
            return ()
        doubt = region_doubt(region.strip())
        if doubt is None:
            return ()
        return (
            SettingsFinding(
                ("region",),
                "unknown-region",
                f"region {region!r} is {doubt}: its endpoint would not exist, so every "
                "call would fail and every image get the policy's on_error verdict; fix "
                "the region, or upgrade botocore if AWS opened the region after this "
                "botocore was released",
            ),
        )

    def prepare(self, context: DetectContext) -> None:
        # botocore loads its models: about a second
        self._clients.get(self.call_settings(context).client)

    def max_image_bytes(self, settings: Mapping[str, Any]) -> int | None:
        # converting scales a larger file down, so then only the engine's cap applies
        return None if settings.get("convert") is True else self.limits.max_bytes

    def precheck(self, image: Image, context: DetectContext) -> None:
        if not self.call_settings(context).convert:  # converting is detect's work, done once
            prepare_image(image, detector=self.name, limits=self.limits)

    def detect(self, image: Image, context: DetectContext) -> DetectorResult:
        try:
            settings = self.call_settings(context)
            prepared = prepare_image(
                image, detector=self.name, limits=self.limits, convert=settings.convert
            )
            if image.data is None and image.uri is not None and settings.screen_s3:
                s3 = self._s3_clients.get(settings.client)
                location = parse_s3_uri(image.uri)  # prepare_image refused any other URI
                screen_s3_object(s3, location, name=image.name, detector=self.name)
        except DetectorError as exc:
            exc.sent = False  # refused here: no request went out
            raise
        response = call_rekognition(
            self._clients,
            settings.client,
            self.operation,
            settings.request(prepared.request, context.min_confidence),
            detector=self.name,
            image=image,
        )
        result = self.from_stored(response.body, context)  # what the settings tell included
        metadata = dict(result.metadata)
        if prepared.converted is not None:
            metadata["converted"] = dict(prepared.converted)
        if response.request_id is not None:
            metadata["request_id"] = response.request_id
        return dataclasses.replace(result, metadata=metadata)
