"""A local stand-in for the WhatsApp Cloud API and the Telegram Bot API (a test helper, not a product binary).

It answers the few calls Parley makes the way the documented APIs do, records every request, and can be told
to fail: the next requests for a key (a WhatsApp recipient `to`, a Telegram `chat_id`, a media id or file_id) get
scripted answers in order, then normal success again. Tests reach it over HTTP only, so several pytest sessions
can share one instance. Run as `python3 fake_provider.py [port]`; `ensure_running()` starts it when it is not
answering yet.

Routes (WA = /whatsapp, TG = /telegram):
  POST WA/{phone_number_id}/messages     Bearer token required; -> {"messaging_product","contacts","messages":[{"id"}]}
                                         (the message object's "type" member is checked minimally: text needs
                                         a body, media a link or id, and audio/sticker take no caption)
  GET  WA/{media_id}                     Bearer; -> {"messaging_product","id","url","mime_type","sha256","file_size"}
  GET  /whatsapp-cdn/{media_id}          Bearer; -> the bytes
  POST TG/bot{token}/sendMessage         -> {"ok":true,"result":{"message_id","chat":{"id"},"date","text"}}
  POST TG/bot{token}/send{Photo,Video,Audio,Voice,Document,Sticker}  the file (URL or file_id) in its parameter,
                                         or uploaded (multipart/form-data); sendDocument fetches a URL and, as
                                         the Bot API does, takes only GIF, PDF and ZIP files that way;
                                         -> {"ok":true,"result":{"message_id","chat","date",<kind>,"caption"?}}
                                         (an uploaded file is recorded as {"filename","content_type","size","sha256"})
  GET|POST TG/bot{token}/getFile         -> {"ok":true,"result":{"file_id","file_unique_id","file_size","file_path"}}
  GET  TG/file/bot{token}/{file_path}    -> the bytes
Control:
  PUT    /_fake/media/{whatsapp|telegram}/{id}   body = bytes, X-Fake-Mime = type
  POST   /_fake/script {"key", "responses": [{"status", "body", "headers", "delay_ms", "chunked"?}]}
  GET    /_fake/requests?key=K           DELETE /_fake/requests?key=K
  GET    /_fake/ping
"""

import hashlib
import http.client
import http.server
import itertools
import email.parser
import email.policy
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

PORT = int(os.environ.get("PARLEY_FAKE_PROVIDER_PORT", "8090"))
BASE = f"http://127.0.0.1:{PORT}"
WHATSAPP_TOKEN = os.environ.get("PARLEY_WHATSAPP_ACCESS_TOKEN", "dev-whatsapp-token")
TELEGRAM_TOKEN = os.environ.get("PARLEY_TELEGRAM_BOT_TOKEN", "123456:dev-telegram-token")
MAX_BODY = 64 << 20


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.media = {}      # (provider, id) -> (bytes, mime)
        self.scripts = {}    # key -> [response, ...]
        self.requests = {}   # key -> [request, ...]
        self.ids = itertools.count(1)
        self.run = os.urandom(4).hex().upper()  # ids never repeat across restarts

    def next_script(self, key):
        with self.lock:
            queue = self.scripts.get(key)
            if not queue:
                return None
            answer = queue.pop(0)
            if not queue:
                del self.scripts[key]
            return answer

    def record(self, key, entry):
        with self.lock:
            self.requests.setdefault(key, []).append(entry)


STATE = State()


def graph_error(code, message, status=400):
    return status, {"error": {"message": message, "type": "OAuthException", "code": code,
                              "fbtrace_id": "FAKE"}}


WA_MEDIA = {"image", "video", "audio", "document", "sticker"}
WA_CAPTIONED = {"image", "video", "document"}
TG_FILE_METHODS = {"sendPhoto": "photo", "sendVideo": "video", "sendAudio": "audio", "sendVoice": "voice",
                   "sendDocument": "document", "sendSticker": "sticker"}


def whatsapp_object_problem(body):
    """Why a WhatsApp message's type object is not of the documented shape (a minimal check), or None."""
    kind = body.get("type", "text")
    obj = body.get(kind)
    if not isinstance(obj, dict):
        return f"(#100) Param {kind} must be a JSON object"
    if kind == "text" and not (isinstance(obj.get("body"), str) and obj["body"]):
        return "(#100) Param text['body'] is required"
    if kind in WA_MEDIA:
        if not (isinstance(obj.get("link"), str) and obj["link"]) and not obj.get("id"):
            return f"(#100) Param {kind}['link'] or {kind}['id'] is required"
        if "caption" in obj and kind not in WA_CAPTIONED:
            return f"(#100) Param {kind}['caption'] is not allowed for {kind}"
        if "filename" in obj and kind != "document":
            return f"(#100) Param {kind}['filename'] is only for documents"
    return None


TG_DOCUMENT_URL_TYPES = ("application/pdf", "image/gif", "application/zip")


def multipart_fields(ctype, raw):
    """The fields of a multipart/form-data body: text as str, files as {"filename","content_type","size","sha256"}."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw)
    fields = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is None:
            fields[name] = data.decode("utf-8", "replace")
        else:
            fields[name] = {"filename": part.get_filename(), "content_type": part.get_content_type(),
                            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return fields


def url_content_type(url):
    """The Content-Type a URL is served with, as Telegram would fetch it; None when it cannot be fetched."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=0-0"}), timeout=5) as r:
            return (r.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except (OSError, ValueError):
        return None


def telegram_file(field, ref):
    """The result member of a Telegram send<Kind> for the file ref (a URL, a file_id, or an upload), as the Bot API
    shapes it."""
    if isinstance(ref, dict):
        uid = ref["sha256"][:16]
        f = {"file_id": f"FAKE{field}{uid}", "file_unique_id": uid, "file_size": ref["size"]}
        return dict(f, file_name=ref["filename"], mime_type=ref["content_type"]) if field == "document" else f
    uid = hashlib.sha1(ref.encode()).hexdigest()[:16]
    f = {"file_id": f"FAKE{field}{uid}", "file_unique_id": uid, "file_size": 1024}
    if field == "photo":
        return [dict(f, file_id=f"{f['file_id']}s", width=90, height=90), dict(f, width=800, height=800)]
    extra = {"video": {"width": 640, "height": 360, "duration": 3}, "audio": {"duration": 3},
             "voice": {"duration": 3, "mime_type": "audio/ogg"},
             "document": {"file_name": urllib.parse.urlsplit(ref).path.rsplit("/", 1)[-1] or "file"},
             "sticker": {"type": "regular", "width": 512, "height": 512, "is_animated": False,
                         "is_video": False}}
    return {**f, **extra.get(field, {})}


def telegram_error(status, description, **extra):
    body = {"ok": False, "error_code": status, "description": description}
    body.update(extra)
    return status, body


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-provider"

    def log_message(self, *args):
        pass

    # ------------------------------------------------------------------ plumbing
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(n) if n else b""

    def send(self, status, body, headers=None, ctype=None):
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), ctype or "application/json"
        elif isinstance(body, str):
            data, ctype = body.encode(), ctype or "text/plain"
        else:
            data, ctype = body or b"", ctype or "application/octet-stream"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def parsed(self, raw):
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            try:
                return json.loads(raw or b"null")
            except ValueError:
                return raw.decode("utf-8", "replace")
        if "x-www-form-urlencoded" in ctype:
            return dict(urllib.parse.parse_qsl(raw.decode("utf-8", "replace")))
        if "multipart/form-data" in ctype:
            return multipart_fields(ctype, raw)
        return raw.decode("utf-8", "replace") if raw else None

    def bearer_ok(self):
        return self.headers.get("Authorization") == f"Bearer {WHATSAPP_TOKEN}"

    def scripted(self, key, entry):
        """Record the request under key; answer a scripted response when one is queued (True)."""
        STATE.record(key, entry)
        answer = STATE.next_script(key)
        if answer is None:
            return False
        time.sleep(answer.get("delay_ms", 0) / 1000)
        if answer.get("drop"):
            self.close_connection = True
            return True
        if answer.get("chunked"):
            self.send_chunked(answer.get("status", 200), answer.get("body", ""), answer.get("headers"))
            return True
        self.send(answer.get("status", 200), answer.get("body", {}), answer.get("headers"))
        return True

    def send_chunked(self, status, body, headers=None):
        """Like send(), but with Transfer-Encoding: chunked, so no Content-Length announces the size (a
        scripted answer with "chunked": true). A client that stops reading ends the answer early."""
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        try:
            for i in range(0, len(data), 65536):
                piece = data[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        raw = self.read_body()
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        entry = {"method": self.command, "path": url.path, "query": query,
                 "headers": {k: v for k, v in self.headers.items()}, "body": self.parsed(raw),
                 "at": time.time()}
        if parts[:1] == ["_fake"]:
            return self.control(parts[1:], query, raw)
        if parts[:1] == ["whatsapp"]:
            return self.whatsapp(parts[1:], entry)
        if parts[:1] == ["whatsapp-cdn"] and len(parts) == 2:
            return self.whatsapp_cdn(parts[1], entry)
        if parts[:1] == ["telegram"]:
            return self.telegram(parts[1:], query, entry)
        self.send(404, {"error": "no such fake route"})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = lambda self: self.dispatch()

    # ------------------------------------------------------------------ control
    def control(self, parts, query, raw):
        if parts == ["ping"]:
            return self.send(200, {"fake": "provider"})
        if parts[:1] == ["media"] and len(parts) == 3 and self.command == "PUT":
            mime = self.headers.get("X-Fake-Mime", "application/octet-stream")
            with STATE.lock:
                STATE.media[(parts[1], parts[2])] = (raw, mime)
            return self.send(204, b"")
        if parts == ["script"] and self.command == "POST":
            spec = json.loads(raw)
            with STATE.lock:
                STATE.scripts.setdefault(str(spec["key"]), []).extend(spec["responses"])
            return self.send(204, b"")
        if parts == ["requests"]:
            key = query.get("key", "")
            with STATE.lock:
                if self.command == "DELETE":
                    STATE.requests.pop(key, None)
                    STATE.scripts.pop(key, None)
                    return self.send(204, b"")
                return self.send(200, {"data": list(STATE.requests.get(key, []))})
        self.send(404, {"error": "no such control route"})

    # ------------------------------------------------------------------ WhatsApp
    def whatsapp(self, parts, entry):
        if len(parts) == 2 and parts[1] == "messages" and self.command == "POST":
            body = entry["body"] if isinstance(entry["body"], dict) else {}
            to = str(body.get("to", ""))
            if self.scripted(to, entry):
                return None
            if not self.bearer_ok():
                return self.send(*graph_error(190, "Invalid OAuth access token.", 401))
            if body.get("messaging_product") != "whatsapp" or not to:
                return self.send(*graph_error(100, "Invalid parameter"))
            problem = whatsapp_object_problem(body)
            if problem:
                return self.send(*graph_error(100, problem))
            wamid = f"wamid.FAKE{STATE.run}{next(STATE.ids):08d}"
            return self.send(200, {"messaging_product": "whatsapp",
                                   "contacts": [{"input": to, "wa_id": to}],
                                   "messages": [{"id": wamid}]})
        if len(parts) == 1 and self.command == "GET":
            media_id = parts[0]
            if self.scripted(media_id, entry):
                return None
            if not self.bearer_ok():
                return self.send(*graph_error(190, "Invalid OAuth access token.", 401))
            with STATE.lock:
                found = STATE.media.get(("whatsapp", media_id))
            if found is None:
                return self.send(*graph_error(100, "Unsupported get request. Object does not exist", 400))
            data, mime = found
            return self.send(200, {"messaging_product": "whatsapp", "id": media_id,
                                   "url": f"{BASE}/whatsapp-cdn/{urllib.parse.quote(media_id)}",
                                   "mime_type": mime, "sha256": hashlib.sha256(data).hexdigest(),
                                   "file_size": len(data)})
        self.send(*graph_error(100, "Unknown path components", 400))

    def whatsapp_cdn(self, media_id, entry):
        if self.scripted(f"cdn:{media_id}", entry):
            return None
        if not self.bearer_ok():
            return self.send(401, b"")
        with STATE.lock:
            found = STATE.media.get(("whatsapp", media_id))
        if found is None:
            return self.send(404, b"")
        self.send(200, found[0], ctype=found[1])

    # ------------------------------------------------------------------ Telegram
    def telegram(self, parts, query, entry):
        if parts[:1] == ["file"] and len(parts) >= 3:
            if parts[1] != f"bot{TELEGRAM_TOKEN}":
                return self.send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            file_id = "/".join(parts[2:]).split("/", 1)[-1]
            if self.scripted(f"file:{file_id}", entry):
                return None
            with STATE.lock:
                found = STATE.media.get(("telegram", file_id))
            if found is None:
                return self.send(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return self.send(200, found[0], ctype=found[1])
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self.send(*telegram_error(404, "Not Found"))
        if parts[0] != f"bot{TELEGRAM_TOKEN}":
            return self.send(*telegram_error(401, "Unauthorized"))
        body = entry["body"] if isinstance(entry["body"], dict) else {}
        args = {**query, **body}
        if parts[1] == "sendMessage":
            chat_id = str(args.get("chat_id", ""))
            if self.scripted(chat_id, entry):
                return None
            if not chat_id or not args.get("text"):
                return self.send(*telegram_error(400, "Bad Request: message text is empty"))
            return self.send(200, {"ok": True, "result": {
                "message_id": next(STATE.ids), "date": int(time.time()),
                "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "private"},
                "text": args["text"]}})
        if parts[1] in TG_FILE_METHODS:
            return self.telegram_send_file(TG_FILE_METHODS[parts[1]], args, entry)
        if parts[1] == "getFile":
            file_id = str(args.get("file_id", ""))
            if self.scripted(file_id, entry):
                return None
            with STATE.lock:
                found = STATE.media.get(("telegram", file_id))
            if found is None:
                return self.send(*telegram_error(400, "Bad Request: invalid file_id"))
            return self.send(200, {"ok": True, "result": {
                "file_id": file_id, "file_unique_id": hashlib.sha1(file_id.encode()).hexdigest()[:16],
                "file_size": len(found[0]), "file_path": f"documents/{file_id}"}})
        self.send(*telegram_error(404, "Not Found: method not found"))


    def telegram_send_file(self, field, args, entry):
        chat_id = str(args.get("chat_id", ""))
        if self.scripted(chat_id, entry):
            return None
        ref, caption = args.get(field), args.get("caption")
        if not chat_id or not ref or not isinstance(ref, (str, dict)):
            return self.send(*telegram_error(400, f"Bad Request: there is no {field} in the request"))
        if field == "document" and isinstance(ref, str) and ref.startswith(("http://", "https://")):
            fetched = url_content_type(ref)
            if fetched is None:
                return self.send(*telegram_error(400, "Bad Request: failed to get HTTP URL content"))
            if fetched not in TG_DOCUMENT_URL_TYPES:
                return self.send(*telegram_error(400, "Bad Request: wrong type of the web page content"))
        if isinstance(caption, str) and len(caption.encode("utf-16-le")) // 2 > 1024:
            return self.send(*telegram_error(400, "Bad Request: message caption is too long"))
        result = {"message_id": next(STATE.ids), "date": int(time.time()),
                  "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id, "type": "private"},
                  field: telegram_file(field, ref)}
        if caption and field != "sticker":
            result["caption"] = caption
        return self.send(200, {"ok": True, "result": result})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------------- client side (tests)

def _call(method, path, body=None, headers=None, timeout=5):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, (json.loads(data) if data and "json" in resp.getheader("Content-Type", "") else data)
    finally:
        conn.close()


def is_running():
    try:
        return _call("GET", "/_fake/ping", timeout=1)[0] == 200
    except OSError:
        return False


def ensure_running():
    """Start the fake provider as its own process unless one answers already; returns the Popen or None."""
    if is_running():
        return None
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(PORT)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 10
    while time.time() < deadline:
        if is_running():
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"the fake provider did not start on port {PORT}")


def put_media(provider, media_id, data, mime):
    status, _ = _call("PUT", f"/_fake/media/{provider}/{urllib.parse.quote(media_id, safe='')}", data,
                      {"X-Fake-Mime": mime})
    assert status == 204, status


def script(key, responses):
    status, _ = _call("POST", "/_fake/script", {"key": str(key), "responses": responses})
    assert status == 204, status


def requests_for(key):
    status, body = _call("GET", f"/_fake/requests?key={urllib.parse.quote(str(key), safe='')}")
    assert status == 200, status
    return body["data"]


def clear(key):
    _call("DELETE", f"/_fake/requests?key={urllib.parse.quote(str(key), safe='')}")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else PORT
    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
