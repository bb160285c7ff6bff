#!/usr/bin/env python
"""The README's screenshot of the demo page (app.py): the default Fashion-MNIST model, after classifying one of its
test images.

    python docs/make_demo_screenshot.py outputs/vit-simple            # writes docs/images/demo.png

The model folder is copied (its checkpoints left out) and the copy gets examples/ from Fashion-MNIST's test split, as
train_hf.py saves them; the page is served on a free port of 127.0.0.1, and Debian's headless chromium (through
Playwright, never `playwright install`) clicks an example and takes a 1200-pixel-wide screenshot. Needs the demo
extra and /usr/bin/chromium (setup.sh installs both)."""

import argparse
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from vit_simple import demo  # noqa: E402
from vit_simple.fashion_mnist import CLASS_NAMES, load_fashion_mnist  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the trained default model's folder (train_hf.py's output)")
    parser.add_argument("--output", default=str(Path(__file__).parent / "images" / "demo.png"))
    parser.add_argument("--example", type=int, default=9, help="which example to click, 0-9 in the order of the "
                        "test split's classes (default 9: 09-t-shirt-top.png)")
    parser.add_argument("--name", help="the name the page shows (default: the folder's)")
    parser.add_argument("--width", type=int, default=1200)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / (args.name or Path(args.model).resolve().name)  # the page shows the folder's name
        shutil.copytree(args.model, folder, ignore=shutil.ignore_patterns("checkpoint-*", "runs"))
        examples = demo.save_examples(folder, load_fashion_mnist()["test"], "image", "label", CLASS_NAMES)
        page = demo.build_page(str(folder))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        demo.serve(page, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                                     args=CHROMIUM_ARGS)
                tab = browser.new_page(viewport={"width": args.width, "height": 900})
                tab.goto(f"http://127.0.0.1:{port}/")
                tab.click(f"button:has(img[src*='{examples[args.example].name}'])")
                tab.wait_for_selector("#overlay img")
                tab.wait_for_timeout(500)  # the overlay's fade-in
                Path(args.output).parent.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=args.output, full_page=True)
                browser.close()
        finally:
            page.close()
    print(f"wrote {args.output} ({examples[args.example].name})")


if __name__ == "__main__":
    main()
