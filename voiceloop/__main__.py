from voiceloop.cli.app import main

main()
