"""Merges the age branch of one gender-age checkpoint with the gender branch of another.

    python deploy/ga_merge.py --age-model age/model,0 --gender-model gender/model,0 --prefix ga/model

The merged graph is the age checkpoint's fc1; its params are the age checkpoint's `age*` params
plus the gender checkpoint's `gender*` params (arguments and auxiliary states), saved as epoch 0.
Every other param is dropped, as in 2019, so both branches must be named that way.
"""
import argparse

from common import checkpoint

BRANCHES = ('age', 'gender')  # which checkpoint gives which prefix, in --age/--gender order


def build_parser():
    parser = argparse.ArgumentParser(description='merge age and gender models',
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--age-model', default='', help="age checkpoint 'prefix,epoch'")
    parser.add_argument('--gender-model', default='', help="gender checkpoint 'prefix,epoch'")
    parser.add_argument('--prefix', default='', help='prefix of the merged checkpoint (epoch 0)')
    return parser


def merge(age_model, gender_model, out_prefix):
    """Write the merged checkpoint; returns (symbol, arg_params, aux_params)."""
    merged_symbol = None
    merged_args, merged_aux = {}, {}
    for i, (model, branch) in enumerate(zip((age_model, gender_model), BRANCHES)):
        prefix, epoch = checkpoint.parse_model_arg(model)
        print('loading', prefix, epoch)
        symbol, arg_params, aux_params = checkpoint.load_checkpoint(prefix, epoch)
        if merged_symbol is None:
            internals = symbol.get_internals()
            if 'fc1_output' not in internals.list_outputs():
                raise ValueError("%s has no 'fc1' node" % checkpoint.symbol_path(prefix))
            merged_symbol = internals['fc1_output']
        for name in sorted(arg_params):
            if name.startswith(branch):
                print('arg', i, name)
                merged_args[name] = arg_params[name]
        for name in sorted(aux_params):
            if name.startswith(branch):
                print('aux', i, name)
                merged_aux[name] = aux_params[name]
    # 2019 wrote the checkpoint anyway; it then failed only when loaded.
    missing = [n for n in merged_symbol.list_arguments() if n != 'data' and n not in merged_args]
    missing += [n for n in merged_symbol.list_auxiliary_states() if n not in merged_aux]
    if missing:
        raise ValueError("the merged fc1 graph of %s needs params that start with neither 'age' "
                         "nor 'gender', which ga_merge drops: %s"
                         % (age_model, ', '.join(missing[:10]) + (' ...' if len(missing) > 10 else '')))
    checkpoint.save_checkpoint(out_prefix, 0, merged_symbol, merged_args, merged_aux)
    return merged_symbol, merged_args, merged_aux


def main(argv=None):
    args = build_parser().parse_args(argv)
    for flag, value in (('--age-model', args.age_model), ('--gender-model', args.gender_model),
                        ('--prefix', args.prefix)):
        if not value:
            raise SystemExit('ga_merge: %s is required' % flag)
    try:
        merge(args.age_model, args.gender_model, args.prefix)
    except ValueError as err:
        raise SystemExit('ga_merge: %s' % err)


if __name__ == '__main__':
    main()
