"""The demo page served, as a person and a program use it: uploaded through a real browser (Debian's headless
chromium, driven by Playwright), called at its API endpoint /classify through gradio_client, given bad input, and
served from a written Space folder as a Space serves it. Nothing it does leaves 127.0.0.1."""

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import COLORS, save_image
from vit_simple import demo

CHROMIUM = "/usr/bin/chromium"  # Debian's, from setup.sh: `playwright install` downloads a browser, never run it
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SPACE_START_SECONDS = 180  # a fresh Python importing torch, transformers and gradio, on two busy cores


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_loopback(host):
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost
        return False


class Connections:
    """Every host this process looks up or connects a socket to while recording (socket's own functions, which
    httpx, uvicorn and gradio_client go through)."""

    def __init__(self):
        self.hosts = []

    def __enter__(self):
        self.patch = pytest.MonkeyPatch()
        connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

        def host(address):
            return address[0] if isinstance(address, tuple) else "localhost"  # a Unix socket is a file here

        def recording_connect(sock, address):
            self.hosts.append(host(address))
            return connect(sock, address)

        def recording_connect_ex(sock, address):
            self.hosts.append(host(address))
            return connect_ex(sock, address)

        def recording_getaddrinfo(name, *args, **kwargs):
            self.hosts.append(str(name))
            return getaddrinfo(name, *args, **kwargs)

        self.patch.setattr(socket.socket, "connect", recording_connect)
        self.patch.setattr(socket.socket, "connect_ex", recording_connect_ex)
        self.patch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
        return self

    def __exit__(self, *exc):
        self.patch.undo()


def hub_cache(cache, repo_id, folder):
    """`folder` laid out as the Hub cache holds a downloaded model repo, so that `repo_id` loads offline."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return cache


@pytest.fixture(scope="module", autouse=True)
def space(colour_model, tmp_path_factory):
    """A Space folder written for the colour model as pushed to demo-user/colours, served as a Space serves it
    (`python app.py` in the folder, in a fresh process) with the model in the Hub's cache, offline. Started before
    the other tests here, it boots (a Python importing torch, transformers and gradio) while they run."""
    tmp_path = tmp_path_factory.mktemp("space")
    folder = demo.write_space(tmp_path / "space", str(colour_model["folder"]), hub_model_id="demo-user/colours")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # its own vit_simple folder
    env.update(HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub_cache(tmp_path / "hub", "demo-user/colours",
                                                              colour_model["folder"])),
               HF_MODULES_CACHE=str(tmp_path / "modules"), GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
               GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1")
    log = tmp_path / "space.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=folder, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        yield {"process": process, "url": f"http://127.0.0.1:{port}/", "port": port, "log": log}
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def served(colour_model, tmp_path_factory):
    """The page of the colour model, served in this process on a free port of 127.0.0.1 from its start (gradio
    imported, the model loaded) to its close, recording every connection meanwhile."""
    threads = torch.get_num_threads()
    with Connections() as connections, pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.setenv("GRADIO_TEMP_DIR", str(tmp_path_factory.mktemp("gradio")))
        torch.set_num_threads(1)  # tiny forward passes, which a busy process stalls on two threads
        page = demo.build_page(str(colour_model["folder"]))
        port = free_port()
        demo.serve(page, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield {"url": f"http://127.0.0.1:{port}/", "connections": connections}
        finally:
            page.close()
            torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served["url"], analytics_enabled=False, verbose=False)


@pytest.fixture(scope="module")
def images(colour_model, tmp_path_factory):
    """A clean red square (the top label by a wide margin) and the bad or unusual files a person may upload, with
    the top label `pipeline("image-classification")` gives the red square."""
    from transformers import pipeline

    folder = tmp_path_factory.mktemp("uploads")
    files = {name: folder / f"{name}.png" for name in ("red", "grayscale", "rgba", "palette", "huge")}
    save_image(files["red"], COLORS["red"], (48, 40), "RGB", seed=1)
    for name, mode in (("grayscale", "L"), ("rgba", "RGBA"), ("palette", "P")):
        save_image(files[name], COLORS["blue"], (30, 50), mode, seed=2)
    Image.new("1", (10_000, 10_000)).save(files["huge"])  # 12 kB on disk, 100 megapixels decoded
    files["text"] = folder / "notes.txt"
    files["text"].write_text("a file that is not an image")
    classify = pipeline("image-classification", model=str(colour_model["folder"]))
    return {**files, "red label": classify(str(files["red"]), top_k=1)[0]["label"]}


def classify(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)) if path else None, api_name="/classify")


# the API


def test_the_api_endpoint_classify_gives_the_top_5_labels_first_and_the_overlay(client, images, colour_model):
    labels, overlay = classify(client, images["red"])
    assert labels["label"] == images["red label"] == "red"
    assert [entry["label"] for entry in labels["confidences"]][0] == "red"
    assert len(labels["confidences"]) == 3 and labels["confidences"][0]["confidence"] > 0.9
    assert Image.open(overlay).mode == "RGB" and max(Image.open(overlay).size) <= demo.OVERLAY_SIDE
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/classify"]


@pytest.mark.parametrize("upload, message", [
    ("text", "notes.txt is not an image this page can read (UnidentifiedImageError): upload a PNG, JPEG"),
    (None, "No image: upload one (or click an example) before Submit."),
    ("huge", "huge.png is 10000x10000 pixels (100 megapixels), more than the 50 this page decodes: scale it down"),
])
def test_bad_input_gets_a_message_and_the_next_request_still_works(client, images, upload, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as error:
        classify(client, images[upload] if upload else None)
    assert message in str(error.value)
    assert classify(client, images["red"])[0]["label"] == images["red label"]


@pytest.mark.parametrize("upload", ["grayscale", "rgba", "palette"])
def test_grayscale_rgba_and_palette_images_are_converted_and_classified(client, images, upload):
    labels, overlay = classify(client, images[upload])
    assert len(labels["confidences"]) == 3 and Image.open(overlay).mode == "RGB"


def test_no_request_leaves_127_0_0_1_while_the_page_starts_and_serves(served, client, images):
    classify(client, images["red"])
    hosts = served["connections"].hosts
    assert "127.0.0.1" in hosts  # the recorder saw the traffic
    assert [host for host in hosts if not is_loopback(host)] == []


def test_building_and_serving_the_page_writes_nothing_beside_the_library(served):
    # gradio writes a .pyi stub beside the source of any component subclass: the page defines none
    assert not list(Path(demo.__file__).parent.glob("*.pyi"))


# a person in a browser


def test_in_a_browser_an_upload_gets_pipelines_top_label_and_the_overlay_and_examples_click(served, images,
                                                                                          colour_model, tmp_path):
    from playwright.sync_api import sync_playwright
    from transformers import pipeline

    requests = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(served["url"])
            page.set_input_files("#image input[type=file]", str(images["red"]))
            page.wait_for_selector("#image img[src*='red.png']")  # the upload is done: Submit before it races it
            page.click("#submit")
            page.wait_for_selector("#overlay img")
            top = page.locator("#labels [data-testid=label-output-value]").inner_text()
            page.screenshot(path=tmp_path / "demo.png", full_page=True)

            example = sorted((colour_model["folder"] / "examples").iterdir())[0]  # 00-blue.png
            page.click(f"button:has(img[src*='{example.name}'])")  # runs the page at once
            expected = pipeline("image-classification", model=str(colour_model["folder"]))(str(example), top_k=1)
            page.wait_for_selector(f"#labels [data-testid=label-output-value]:text-is('{expected[0]['label']}')")
        finally:
            browser.close()
    assert top == images["red label"]
    assert Image.open(tmp_path / "demo.png").width == 1200
    assert requests and [url for url in requests if not url.startswith((served["url"], "data:", "blob:"))] == []


# a Space


def test_a_written_space_serves_the_model_it_names_as_a_space_runs_it(space, images):
    from gradio_client import Client

    deadline = time.monotonic() + SPACE_START_SECONDS
    while True:
        assert space["process"].poll() is None, f"the Space exited: {space['log'].read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the Space did not start in time: {space['log'].read_text()[-3000:]}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", space["port"])) == 0:
                break
        time.sleep(0.25)
    labels, overlay = classify(Client(space["url"], analytics_enabled=False, verbose=False), images["red"])
    assert labels["label"] == images["red label"] and Image.open(overlay).mode == "RGB"
