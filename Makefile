main:  ## set up and run the main job (train, evaluate, export, report)
	bash scripts/main.sh

test:  ## set up and run the tests
	bash scripts/test.sh

.PHONY: main test
