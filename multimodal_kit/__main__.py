from multimodal_kit.cli import main

main()
