"""A fake Amazon Rekognition for tests: a real HTTP server on 127.0.0.1.

:class:`FakeRekognition` speaks AWS JSON 1.1, as Rekognition does, so boto3
reaches it through ``endpoint_url`` with its whole HTTP stack in play:
request signing, serialisation, response parsing, error codes and retries.
Use it to test an upload flow end to end without an AWS account::

    from policy_engine_rekognition.testing import FakeRekognition

    with FakeRekognition() as fake:
        fake.respond(image_bytes, {"ModerationLabels": [...], "ModerationModelVersion": "7.0"})
        fake.throttle(times=2)                 # the next two calls are throttled
        ...                                    # settings: {endpoint_url: fake.endpoint_url}
        assert fake.call_count("DetectModerationLabels") == 3

It serves ``DetectModerationLabels`` and ``DetectCustomLabels`` and checks what
the service checks and botocore does not (confidence range, empty, oversized
and non-JPEG/PNG images, a missing ``ProjectVersionArn``). Any credentials are
accepted, but requests must be SigV4-signed. Standard library only; no thread
outlives :meth:`FakeRekognition.stop`.

From another language, run it as a server (see ``python -m
policy_engine_rekognition.testing --help``): it prints its endpoint and serves,
scripted by a JSON file (:mod:`.script_file`), until SIGINT or SIGTERM.

The layers, one module each: :mod:`.scripting` (the API and the scripted
outcomes), :mod:`.validation` (what a request must be), :mod:`.server` (HTTP),
:mod:`.script_file` (the API as JSON) and :mod:`.environment` (keeping a test
away from AWS).

A request is answered by the first of these that applies:

1. no ``Authorization`` header: 403 ``MissingAuthenticationTokenException``;
2. an ``X-Amz-Target`` other than the two operations: 400 ``UnknownOperationException``;
3. a body that is not a JSON object: 400 ``SerializationException``;
4. over the ``tps`` limit: ``ThrottlingException`` (status ``throttle_status``);
5. the oldest scripted outcome that matches and is not used up
   (:meth:`~FakeRekognition.fail`, :meth:`~FakeRekognition.throttle`); a scripted
   success is subject to the next step, a scripted failure is not;
6. the service's own checks of the request;
7. the response scripted for the image (:meth:`~FakeRekognition.respond`), else
   the operation's default (:meth:`~FakeRekognition.set_default`).
"""

from policy_engine_rekognition.testing.environment import AWS_ENVIRONMENT, fake_aws_environment
from policy_engine_rekognition.testing.script_file import (
    Script,
    ScriptError,
    parse_script,
    read_script,
)
from policy_engine_rekognition.testing.scripting import (
    ANY,
    DEFAULT_RESPONSES,
    AnyImage,
    FakeRekognition,
    ImageKey,
    RecordedCall,
    image_key,
)
from policy_engine_rekognition.testing.validation import MAX_IMAGE_BYTES, OPERATIONS, Operation

__all__ = [
    "ANY",
    "AWS_ENVIRONMENT",
    "DEFAULT_RESPONSES",
    "MAX_IMAGE_BYTES",
    "OPERATIONS",
    "AnyImage",
    "FakeRekognition",
    "ImageKey",
    "Operation",
    "RecordedCall",
    "Script",
    "ScriptError",
    "fake_aws_environment",
    "image_key",
    "parse_script",
    "read_script",
]
