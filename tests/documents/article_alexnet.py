# The MXNet Gluon article's AlexNet listings (shared/seeds/001), re-indented, with
# gluon_classics in d2l's place. Changes, each marked below:
# - the two names the article takes from its LeNet part (autograd, evaluate_accuracy) are imported;
# - its "数据准备" listing builds Gluon's FashionMNIST dataset, which downloads the official
#   files and checks their SHA-1 (it cannot read a local copy offline): our
#   load_data_fashion_mnist(batch_size, resize=224) stands in for it;
# - `from d2l import mxnet as d2l` becomes `import gluon_classics as d2l`.
from mxnet import autograd                       # added: imported by the article's LeNet part
from gluon_classics import evaluate_accuracy     # added: d2l's first-edition evaluate_accuracy

from mxnet.gluon import nn

net = nn.Sequential()

# 第一层:卷积 + 最大池化
net.add(nn.Conv2D(96, kernel_size=11, strides=4, activation='relu'),
        nn.MaxPool2D(pool_size=3, strides=2))

# 第二层:卷积 + 最大池化
net.add(nn.Conv2D(256, kernel_size=5, padding=2, activation='relu'),
        nn.MaxPool2D(pool_size=3, strides=2))

# 第三到第五层:连续卷积
net.add(nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
        nn.Conv2D(384, kernel_size=3, padding=1, activation='relu'),
        nn.Conv2D(256, kernel_size=3, padding=1, activation='relu'),
        nn.MaxPool2D(pool_size=3, strides=2))

# 全连接层:带丢弃法
net.add(nn.Dense(4096, activation="relu"), nn.Dropout(0.5),
        nn.Dense(4096, activation="relu"), nn.Dropout(0.5),
        nn.Dense(10))  # 输出层,10 个类别(用于 Fashion-MNIST 数据集)

from mxnet import nd

X = nd.random.uniform(shape=(1, 1, 224, 224))
net.initialize()

for layer in net:
    X = layer(X)
    print(layer.name, 'output shape:\t', X.shape)

from gluon_classics import load_data_fashion_mnist   # in place of the article's own loader

batch_size = 128
train_iter, test_iter = load_data_fashion_mnist(batch_size, resize=224)

from mxnet import gluon, init
from mxnet.gluon import Trainer
from mxnet.gluon.loss import SoftmaxCrossEntropyLoss
import gluon_classics as d2l                     # in place of: from d2l import mxnet as d2l


# 定义训练函数
def train_ch5(net, train_iter, test_iter, batch_size, trainer, num_epochs):
    loss = SoftmaxCrossEntropyLoss()
    for epoch in range(num_epochs):
        train_loss, train_acc, n = 0, 0, 0
        for X, y in train_iter:
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                y_hat = net(X)
                l = loss(y_hat, y)
            l.backward()
            trainer.step(batch_size)
            train_loss += l.sum().asscalar()
            train_acc += (y_hat.argmax(axis=1) == y.astype('float32')).sum().asscalar()
            n += y.size
        test_acc = evaluate_accuracy(test_iter, net, ctx)
        print(f"epoch {epoch + 1}, loss {train_loss/n:.4f}, train acc {train_acc/n:.3f}, test acc {test_acc:.3f}")


# 初始化模型和训练参数
ctx, lr, num_epochs = d2l.try_gpu(), 0.01, 5
net.initialize(init=init.Xavier(), ctx=ctx)
trainer = Trainer(net.collect_params(), 'sgd', {'learning_rate': lr})

# 开始训练
train_ch5(net, train_iter, test_iter, batch_size, trainer, num_epochs)
