"""A local stand-in for the Hugging Face Hub (``HF_ENDPOINT``): serves model folders as repos
at one fixed commit, through the endpoints ``huggingface_hub`` uses to list and download a
snapshot, so `assetbuild models pull` and `build --allow-download` run for real offline."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "c0ffee" + "0" * 34


class FakeHub:
    def __init__(self, repos: dict[str, Path]):
        self.repos = {repo: {p.relative_to(folder).as_posix(): p.read_bytes()
                             for p in sorted(folder.rglob("*")) if p.is_file()} for repo, folder in repos.items()}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                hub.answer(self, head=False)

            def do_HEAD(self):
                hub.answer(self, head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?")[0]
        self.requests.append(f"{h.command} {path}")
        status, body, headers = self.route(path)
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)

    def route(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        missing = (404, b"{}", {"X-Error-Code": "RepositoryNotFound", "Content-Type": "application/json"})
        if path.startswith("/api/models/"):
            rest = path[len("/api/models/"):]
            for repo, files in self.repos.items():
                if rest.startswith(repo + "/tree/"):
                    tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                            for f, d in files.items()]
                    return 200, json.dumps(tree).encode(), {"Content-Type": "application/json"}
                if rest == repo or rest.startswith(repo + "/revision/"):
                    info = {"id": repo, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
                    return 200, json.dumps(info).encode(), {"Content-Type": "application/json"}
            return missing
        for repo, files in self.repos.items():
            prefix = f"/{repo}/resolve/"
            if path.startswith(prefix):
                name = path[len(prefix):].partition("/")[2]
                if name not in files:
                    return 404, b"", {"X-Error-Code": "EntryNotFound"}
                data = files[name]
                return 200, data, {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": COMMIT,
                                   "Content-Type": "application/octet-stream"}
        return missing
