# The MXNet Gluon article's LeNet listings (shared/seeds/001, sections 4 and 5), re-indented,
# with gluon_classics in d2l's place: the two import lines marked below are the only additions.
import gluon_classics as d2l                     # added: the article uses d2l without importing it
from gluon_classics import evaluate_accuracy     # added: the article's train_ch5 calls it

from mxnet.gluon import nn
from mxnet import nd

# 定义 LeNet 网络
net = nn.Sequential()
net.add(
    nn.Conv2D(channels=6, kernel_size=5, activation='sigmoid'),
    nn.MaxPool2D(pool_size=2, strides=2),
    nn.Conv2D(channels=16, kernel_size=5, activation='sigmoid'),
    nn.MaxPool2D(pool_size=2, strides=2),
    nn.Dense(120, activation='sigmoid'),
    nn.Dense(84, activation='sigmoid'),
    nn.Dense(10)
)

# 初始化网络
net.initialize()

# 测试网络
X = nd.random.uniform(shape=(1, 1, 28, 28))  # 输入一张随机图片
for layer in net:
    X = layer(X)
    print(f"{layer.name} output shape: {X.shape}")

from mxnet import gluon, autograd, init
from mxnet.gluon import loss as gloss, Trainer
import time

# 加载数据
batch_size = 256
train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size)


# 定义训练函数
def train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, num_epochs):
    loss = gloss.SoftmaxCrossEntropyLoss()
    for epoch in range(num_epochs):
        train_l_sum, train_acc_sum, n, start = 0.0, 0.0, 0, time.time()
        for X, y in train_iter:
            X, y = X.as_in_context(ctx), y.as_in_context(ctx)
            with autograd.record():
                y_hat = net(X)
                l = loss(y_hat, y).sum()
            l.backward()
            trainer.step(batch_size)
            train_l_sum += l.asscalar()
            train_acc_sum += (y_hat.argmax(axis=1) == y).sum().asscalar()
            n += y.size
        test_acc = evaluate_accuracy(test_iter, net, ctx)
        print(f"epoch {epoch+1}, loss {train_l_sum/n:.4f}, train acc {train_acc_sum/n:.3f}, test acc {test_acc:.3f}, time {time.time()-start:.1f} sec")


# 初始化并训练
ctx = d2l.try_gpu()
net.initialize(force_reinit=True, ctx=ctx, init=init.Xavier())
trainer = Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.9})
train_ch5(net, train_iter, test_iter, batch_size, trainer, ctx, 5)
