"""The trainer under the name the 2019 README's combined-margin command uses: same as train.py.

    python -u train_softmax.py --network r100 --loss combined --dataset emore
"""
from recognition.train import main

if __name__ == '__main__':
    main()
