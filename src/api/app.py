"""The 2019 face-verification web service (GET /, POST /ver) on the standard HTTP server."""
import argparse
import base64
import http.server
import importlib.util
import json
import logging
import os
import sys
import threading
import urllib.parse
import urllib.request

import cv2
import numpy as np

logger = logging.getLogger('insightface.api')

HELLO = 'Hello, This is InsightFace!'
ERROR_ANSWER = '-1'
# Flask's default for a view returning a string, which is what 2019 clients got.
CONTENT_TYPE = 'text/html; charset=utf-8'
# Larger photos are shrunk so that their shorter side is at most this (2019's image_resize).
MAX_SHORT_SIDE = 640
URL_SCHEMES = ('http', 'https')
# Bounds on what one request may make the server read, so a client cannot exhaust memory.
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 32 * 1024 * 1024


def load_face_model():
    """face_model.py beside this file, as module 'insightface_api_face_model'.

    src/api is a folder of scripts, not a package, and a plain `import face_model` would find
    the installed root shim of deploy.face_model whenever this file is not the main script;
    loading by path always gets the sibling, whatever the working directory.
    """
    name = 'insightface_api_face_model'
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'face_model.py')
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


face_model = load_face_model()


# --- images of a request ------------------------------------------------------------------------

def downscale(image, max_short_side=MAX_SHORT_SIDE):
    """`image` shrunk by max_short_side / shorter side when that is below 1; else unchanged.

    New sizes are truncated to integers as in 2019, so the shorter side may end at 639.
    """
    scale = float(max_short_side) / min(image.shape[0], image.shape[1])
    if scale < 1.0:
        image = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)))
    return image


def decode_image(raw, what):
    """Encoded image bytes (JPEG, PNG, ...) -> RGB uint8 H x W x 3, downscaled."""
    image = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR) if raw else None
    if image is None:
        raise ValueError("%s: cannot decode the image (%d bytes)" % (what, len(raw)))
    return downscale(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def fetch_url(url, timeout):
    """Bytes at an http(s) `url`, at most MAX_DOWNLOAD_BYTES."""
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme.lower() not in URL_SCHEMES:
        # file:// or a bare path would let any client probe the server's files
        raise ValueError("url must be an http:// or https:// address, got %r" % (url,))
    with urllib.request.urlopen(url, timeout=timeout) as response:
        raw = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(raw) > MAX_DOWNLOAD_BYTES:
        raise ValueError("%s is larger than %d bytes" % (url, MAX_DOWNLOAD_BYTES))
    return raw


def decode_base64(text, what):
    if not isinstance(text, str):
        raise ValueError("%s must be a base64 string, got %s" % (what, type(text).__name__))
    # like 2019's base64.b64decode: characters outside the alphabet are skipped
    return base64.b64decode(text)


def images_from_field(field, what, url_timeout):
    """The image(s) of a request's "source" or "target" object: {"url": ...} (checked first, as
    in 2019) or {"data": base64 or a list of base64}. Returns one RGB image or a list."""
    if not isinstance(field, dict):
        raise ValueError("%s must be an object with 'url' or 'data', got %s"
                         % (what, type(field).__name__))
    if 'url' in field:
        url = field['url']
        return decode_image(fetch_url(url, url_timeout), '%s url %s' % (what, url))
    if 'data' not in field:
        raise ValueError("%s has neither 'url' nor 'data' (keys: %s)" % (what, sorted(field)))
    data = field['data']
    if isinstance(data, list):
        return [decode_image(decode_base64(item, '%s data[%d]' % (what, i)),
                             '%s data[%d]' % (what, i)) for i, item in enumerate(data)]
    return decode_image(decode_base64(data, '%s data' % what), '%s data' % what)


def parse_ver_request(body, url_timeout):
    """(source RGB image, list of target RGB images) from the JSON body of POST /ver."""
    try:
        values = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError("the request body is not JSON: %s" % err) from None
    if not isinstance(values, dict) or 'source' not in values or 'target' not in values:
        raise ValueError("the request must be a JSON object with 'source' and 'target'")
    source = images_from_field(values['source'], 'source', url_timeout)
    if isinstance(source, list):
        raise ValueError("source must be one image, got a list of %d" % len(source))
    targets = images_from_field(values['target'], 'target', url_timeout)
    if not isinstance(targets, list):
        targets = [targets]
    if not targets:
        raise ValueError("target data is an empty list")
    return source, targets


# --- HTTP ---------------------------------------------------------------------------------------

class VerificationHandler(http.server.BaseHTTPRequestHandler):
    """GET / and POST /ver; every failure of /ver answers "-1" (as in 2019) and logs why."""

    server_version = 'InsightFace'

    def _route(self):
        return urllib.parse.urlsplit(self.path).path

    def _send_text(self, text):
        payload = text.encode('utf-8')
        self.send_response(200)
        self.send_header('Content-Type', CONTENT_TYPE)
        self.send_header('Content-Length', str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _read_body(self):
        length = self.headers.get('Content-Length')
        if length is None or not length.strip().isdigit():
            raise ValueError("the request needs a Content-Length header, got %r" % (length,))
        if int(length) > MAX_BODY_BYTES:
            raise ValueError("the request body of %s bytes is larger than %d"
                             % (length, MAX_BODY_BYTES))
        return self.rfile.read(int(length))

    def do_GET(self):
        route = self._route()
        if route == '/':
            self._send_text(HELLO)
        elif route == '/ver':
            self.send_error(405, 'use POST for /ver')
        else:
            self.send_error(404)

    def do_POST(self):
        route = self._route()
        if route != '/ver':
            self.send_error(405 if route == '/' else 404)
            return
        try:
            source, targets = parse_ver_request(self._read_body(), self.server.url_timeout)
            with self.server.model_lock:  # one model, many request threads
                similarity = self.server.model.sim(source, targets)
            answer = '%1.3f' % similarity
            logger.info('sim %s', answer)
        except (ValueError, OSError) as err:  # bad request, unreachable url, no face
            logger.warning('POST /ver from %s answered -1: %s', self.client_address[0], err)
            answer = ERROR_ANSWER
        except Exception:  # a bug: keep the traceback for the operator
            logger.exception('POST /ver from %s answered -1: unexpected error',
                             self.client_address[0])
            answer = ERROR_ANSWER
        self._send_text(answer)

    def log_message(self, format, *args):  # noqa: A002 (the base class's signature)
        logger.info('%s %s', self.address_string(), format % args)


class VerificationServer(http.server.ThreadingHTTPServer):
    """A threaded HTTP server holding the model, the lock that serialises its use, and the
    timeout for fetching image urls."""

    daemon_threads = True

    def __init__(self, address, model, url_timeout):
        self.model = model
        self.model_lock = threading.Lock()
        self.url_timeout = url_timeout
        super().__init__(address, VerificationHandler)


def make_server(model, host='0.0.0.0', port=18080, url_timeout=10.0):
    """A VerificationServer listening on host:port (port 0: any free port); call serve_forever."""
    return VerificationServer((host, port), model, url_timeout)


# --- command line -------------------------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(description='face verification web service',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--model', required=True,
                        help="recognition checkpoint 'prefix,epoch' (with an fc1 layer)")
    parser.add_argument('--gpu', default=0, type=int,
                        help='GPU id; -1 (or a machine without GPUs) for the CPU')
    parser.add_argument('--host', default='0.0.0.0', help='address to listen on')
    parser.add_argument('--port', default=18080, type=int, help='port to listen on')
    parser.add_argument('--image-size', default='112,112', help='network input height,width')
    parser.add_argument('--threshold', default=1.24, type=float,
                        help='squared-distance limit of FaceModel.is_same_id')
    parser.add_argument('--mtcnn-path', default=None,
                        help="a 2019 'mtcnn-model' folder (det1..det3); default: the mtcnn "
                             "package's weights")
    parser.add_argument('--url-timeout', default=10.0, type=float,
                        help='seconds to wait for an image url')
    return parser


def parse_args(argv=None):
    return build_parser().parse_args(argv)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(levelname)s %(message)s')
    try:
        model = face_model.FaceModel(args)
    except (ValueError, OSError) as err:
        parser.error(str(err))
    try:
        server = make_server(model, args.host, args.port, args.url_timeout)
    except OSError as err:
        parser.error("cannot listen on %s:%d: %s" % (args.host, args.port, err))
    logger.info('serving on http://%s:%d', *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == '__main__':
    main()
