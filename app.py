#!/usr/bin/env python
"""A model's demo page, in the Spaces convention (Gradio): upload an image, see its top-5 labels and where the model
looked (the attention rollout over the image), with a line about the model and examples of its test split.

    python app.py outputs/vit-simple                  # http://127.0.0.1:7860
    python app.py user/vit-simple-fmnist --port 8000  # a Hub repo made by vit-simple, on this package's code
    python app.py google/vit-base-patch16-224         # any image classifier transformers loads
    python app.py user/other-model --trust_remote_code    # a model that runs its own code (.py files)
    python app.py outputs/vit-simple --write_space space --hub_model_id user/vit-simple-fmnist
                                                      # a Space folder serving the pushed model: upload `space`

The page serves on 127.0.0.1 only (--share asks Gradio for a public link) and sends nothing out: no analytics, no
version check, nothing fetched (a Hub model downloads once, as it loads). Its API endpoint is /classify:

    gradio_client.Client("http://127.0.0.1:7860/").predict(handle_file("shoe.png"), api_name="/classify")

Needs the demo extra: pip install 'vit-simple[demo]'. The page itself is vit_simple/demo.py.
"""

import argparse
import os
import sys

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no analytics, no version check
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DEFAULT_PORT = 7860
DEMO_EXTRA = ("gradio", "gradio_client", "matplotlib", "sklearn")  # pip install 'vit-simple[demo]' (with reports)


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     allow_abbrev=False)
    parser.add_argument("model", help="a model folder (train_hf.py's output) or Hub id")
    parser.add_argument("--trust_remote_code", action="store_true", help="run the model's own .py files: needed for "
                        "a model that is not a vit-simple and ships its own code; only for code you trust")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                        help=f"the port on 127.0.0.1 (default $GRADIO_SERVER_PORT, else {DEFAULT_PORT})")
    parser.add_argument("--share", action="store_true", help="also a public gradio.live link (Gradio's own option: "
                        "it reaches Gradio's servers)")
    parser.add_argument("--examples", metavar="FOLDER", help="example images to show (default: the model's "
                        "examples/ folder, which train_hf.py writes)")
    parser.add_argument("--write_space", metavar="DIR", help="write a Hub Space folder serving this model instead "
                        "of serving it here: app.py, requirements.txt, README.md with the Spaces YAML, examples/")
    parser.add_argument("--hub_model_id", metavar="OWNER/NAME", help="with --write_space and a model folder: the Hub "
                        "repo the model is (or will be) pushed to, which the Space loads")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_arguments(argv)
    try:
        from vit_simple import demo

        if args.write_space:
            folder = demo.write_space(args.write_space, args.model, args.trust_remote_code, args.hub_model_id)
            print(f"wrote {folder}: try it with `cd {folder} && python app.py`, upload it as its README.md says")
            return
        page = demo.build_page(args.model, args.trust_remote_code, args.examples)
    except ImportError as error:
        if error.name not in DEMO_EXTRA:
            raise
        sys.exit(f"app.py: error: {error}: install the demo extra, pip install 'vit-simple[demo]'")
    except (ValueError, OSError) as error:  # InputError, a model that needs --trust_remote_code, a missing folder
        sys.exit(f"app.py: error: {' '.join(str(error).split())}")
    try:
        demo.serve(page, server_name="127.0.0.1", server_port=args.port, share=args.share)
    except OSError as error:  # the port is taken
        sys.exit(f"app.py: error: {' '.join(str(error).split())} (choose another with --port)")


if __name__ == "__main__":
    main()
