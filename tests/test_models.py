"""Model zoo: the chapters' printouts, parameter counts and registry."""
import mxnet as mx
import pytest
from mxnet import init

from gluon_classics import alexnet, count_parameters, get_model, layer_shapes, lenet, print_shapes
from gluon_classics.cli import build_parser, main
from gluon_classics.model_zoo import MODELS, ModelEntry, check_input_shape, leaves, recipe

# The printouts of the source chapters, layer by layer.
CHAPTER_SHAPES = {
    ('lenet', 'd2l'): [('conv0', (1, 6, 28, 28)), ('pool0', (1, 6, 14, 14)),
                       ('conv1', (1, 16, 10, 10)), ('pool1', (1, 16, 5, 5)),
                       ('dense0', (1, 120)), ('dense1', (1, 84)), ('dense2', (1, 10))],
    ('lenet', 'gluon'): [('conv0', (1, 6, 24, 24)), ('pool0', (1, 6, 12, 12)),
                         ('conv1', (1, 16, 8, 8)), ('pool1', (1, 16, 4, 4)),
                         ('dense0', (1, 120)), ('dense1', (1, 84)), ('dense2', (1, 10))],
    ('lenet', 'lenet5'): [('conv0', (1, 6, 28, 28)), ('pool0', (1, 6, 14, 14)),
                          ('conv1', (1, 16, 10, 10)), ('pool1', (1, 16, 5, 5)),
                          ('conv2', (1, 120, 1, 1)), ('dense0', (1, 84)), ('dense1', (1, 10))],
    ('alexnet', 'd2l'): [('conv0', (1, 96, 54, 54)), ('pool0', (1, 96, 26, 26)),
                         ('conv1', (1, 256, 26, 26)), ('pool1', (1, 256, 12, 12)),
                         ('conv2', (1, 384, 12, 12)), ('conv3', (1, 384, 12, 12)),
                         ('conv4', (1, 256, 12, 12)), ('pool2', (1, 256, 5, 5)),
                         ('dense0', (1, 4096)), ('dropout0', (1, 4096)),
                         ('dense1', (1, 4096)), ('dropout1', (1, 4096)), ('dense2', (1, 10))],
    ('alexnet', 'imagenet'): [('conv0', (1, 96, 55, 55)), ('pool0', (1, 96, 27, 27)),
                              ('conv1', (1, 256, 27, 27)), ('pool1', (1, 256, 13, 13)),
                              ('conv2', (1, 384, 13, 13)), ('conv3', (1, 384, 13, 13)),
                              ('conv4', (1, 256, 13, 13)), ('pool2', (1, 256, 6, 6)),
                              ('dense0', (1, 4096)), ('dropout0', (1, 4096)),
                              ('dense1', (1, 4096)), ('dropout1', (1, 4096)),
                              ('dense2', (1, 1000))],
    # the AlexNet chapter's exercise: AlexNet's design on the 28x28 images themselves
    ('alexnet', 'small'): [('conv0', (1, 32, 28, 28)), ('pool0', (1, 32, 13, 13)),
                           ('conv1', (1, 64, 13, 13)), ('pool1', (1, 64, 6, 6)),
                           ('conv2', (1, 128, 6, 6)), ('conv3', (1, 128, 6, 6)),
                           ('conv4', (1, 64, 6, 6)), ('pool2', (1, 64, 2, 2)),
                           ('dense0', (1, 512)), ('dropout0', (1, 512)),
                           ('dense1', (1, 512)), ('dropout1', (1, 512)), ('dense2', (1, 10))],
}
INPUTS = {'d2l': (1, 1, 28, 28), 'gluon': (1, 1, 28, 28), 'lenet5': (1, 1, 32, 32)}
PARAMS = {('lenet', 'd2l'): 61706, ('lenet', 'gluon'): 44426, ('lenet', 'lenet5'): 61706,
          ('alexnet', 'd2l'): 46764746, ('alexnet', 'imagenet'): 62378344,
          ('alexnet', 'small'): 713418}


def _input(model, variant):
    if model == 'alexnet':
        return {'imagenet': (1, 3, 224, 224), 'small': (1, 1, 28, 28)}.get(variant,
                                                                          (1, 1, 224, 224))
    return INPUTS[variant]


@pytest.mark.parametrize('model,variant', list(CHAPTER_SHAPES))
def test_shapes_match_chapters(model, variant, capsys):
    # Build unrelated nets first: Gluon's global name counter must not leak into the names.
    for _ in range(2):
        lenet(), alexnet()
    net = get_model(model, variant=variant)
    print_shapes(net, _input(model, variant))
    expected = ''.join(f'{name} output shape: {shape}\n'
                       for name, shape in CHAPTER_SHAPES[model, variant])
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize('model,variant', list(PARAMS))
def test_parameter_counts(model, variant):
    assert count_parameters(get_model(model, variant=variant)) == PARAMS[model, variant]


def test_parameter_count_equals_initialized_sizes():
    net = lenet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    assert sum(p.data().size for p in net.collect_params().values()) == 61706


def test_shapes_agree_with_a_real_forward_pass():
    net = lenet('gluon')
    net.initialize(init.Xavier())
    X = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    for layer, (_, shape) in zip(leaves(net), layer_shapes(net, X.shape)):
        X = layer(X)
        assert X.shape == shape


def test_printing_does_not_initialize():
    net = lenet()
    print_shapes(net, (1, 1, 28, 28))
    # an initialized net would make the user's own net.initialize(init.Xavier()) a no-op
    assert all(p._data is None and not p._deferred_init for p in net.collect_params().values())


def test_exercise_overrides_change_the_layers():
    net = lenet(activation='relu', pool='max', kernel_size=3, channels=(8, 16, 32),
                dense_units=(64,))
    names = [n for n, _ in layer_shapes(net, (1, 1, 28, 28))]
    assert names == ['conv0', 'pool0', 'conv1', 'pool1', 'conv2', 'dense0', 'dense1']
    convs = [b for b in net.features._children.values() if type(b).__name__ == 'Conv2D']
    assert [c._channels for c in convs] == [8, 16, 32]
    assert all(c._kwargs['kernel'] == (3, 3) and c.act._act_type == 'relu' for c in convs)
    assert type(net.features[1]).__name__ == 'MaxPool2D'


def test_small_alexnet_keeps_alexnets_design():
    net = alexnet('small')
    assert net.input_shape == (1, 28, 28)
    layers = leaves(net)
    kinds = [type(layer).__name__ for layer in layers]
    assert kinds.count('Conv2D') == 5 and kinds.count('Dense') == 3
    assert kinds.count('MaxPool2D') == 3 and kinds.count('Dropout') == 2
    assert all(layer.act._act_type == 'relu' for layer in layers
               if type(layer).__name__ in ('Conv2D', 'Dense') and layer is not layers[-1])
    assert all(layer._rate == 0.5 for layer in layers if type(layer).__name__ == 'Dropout')
    # the architecture is arguments, so the exercise can be varied without a copy
    wider = alexnet('small', dense=(1024, 1024), pool=(2, 2))
    assert layer_shapes(wider, (1, 1, 28, 28))[1] == ('pool0', (1, 32, 14, 14))
    assert count_parameters(wider) > count_parameters(net)


def test_hybridized_net_gives_the_same_output():
    net = alexnet()
    net.initialize(init.Xavier())
    X = mx.nd.random.uniform(shape=(2, 1, 224, 224))
    with mx.autograd.predict_mode():
        eager = net(X)
        net.hybridize()
        assert mx.nd.abs(net(X) - eager).max().asscalar() < 1e-4


@pytest.mark.parametrize('shape,message', [
    ((1, 1, 28, 28), 'expects (N, 1, 224, 224)'),
    ((1, 1, 224), 'must be a batch (N, C, H, W)'),
])
def test_input_too_small_is_one_clear_line(shape, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')) as err:
        check_input_shape(alexnet(), shape)
    assert '\n' not in str(err.value)


def test_trained_lenet_rejects_another_image_size():
    net = lenet()
    net.initialize()
    net(mx.nd.zeros((1, 1, 28, 28)))
    with pytest.raises(ValueError, match=r'expects \(N, 1, 28, 28\)'):
        check_input_shape(net, (4, 1, 32, 32))


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match='d2l, gluon, lenet5'):
        lenet('lenet-7')
    with pytest.raises(ValueError, match='alexnet, lenet'):
        get_model('vgg')
    with pytest.raises(ValueError, match='d2l, imagenet'):
        alexnet('caffe')


def test_one_registry_entry_is_all_get_model_fit_and_the_cli_need(monkeypatch, capsys):
    tiny = {'small': dict(dense_units=(8,))}
    entry = ModelEntry(lambda variant='small', **kwargs: lenet(**dict(tiny[variant], **kwargs)),
                       tiny, dict(lr=0.5, batch_size=32, epochs=3, resize=None),
                       variant_recipes={'small': dict(batch_size=16)})
    monkeypatch.setitem(MODELS, 'tiny', entry)
    assert recipe('tiny', 'small') == dict(lr=0.5, batch_size=16, epochs=3, resize=None)
    # the d2l convs (156 + 2,416), dense 400 -> 8 (3,208), output 8 -> 10 (90)
    assert count_parameters(get_model('tiny', variant='small')) == 5870
    args = build_parser().parse_args(['train', 'tiny', '--variant', 'small'])
    assert (args.model, args.variant) == ('tiny', 'small')
    with pytest.raises(SystemExit):
        main(['train', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'tiny: small' in text and '0.5 for tiny' in text and '16 for tiny small' in text
