/* tests/effnet/effnet_layers.c — prints a backbone's layer list for test_model.py.
 *
 * usage: effnet_layers ARCH SIZE
 * One line per layer of wn_backbone_build_graph(ARCH, SIZE, SIZE), in model.layers
 * order:  index <TAB> name <TAB> Keras class <TAB> HxWxC <TAB> weight shapes
 * (e.g. "3,3,32,1;32;32;32;32", Keras shapes in Keras's weight order), then a line
 * "total <TAB> layers <TAB> params <TAB> stats" (float counts of the two buffers).
 * Exit 1 with the reason on stderr when the graph cannot be built. */
#include <stdio.h>
#include <stdlib.h>

#include "host/base/error.h"
#include "engine/model/graph.h"
#include "engine/model/model.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: effnet_layers ARCH SIZE\n");
        return 2;
    }
    int size = atoi(argv[2]);
    wn_graph g;
    if (wn_backbone_build_graph(&g, argv[1], size, size) != WN_OK) {
        fprintf(stderr, "effnet_layers: %s\n", wn_last_error());
        return 1;
    }
    for (int i = 0; i < g.n_layers; i++) {
        const wn_layer *l = &g.layers[i];
        printf("%d\t%s\t%s\t%dx%dx%d\t", i, l->name, wn_layer_type_keras(l->type), l->out_h,
               l->out_w, l->out_c);
        for (int k = 0; k < l->n_weights; k++) {
            const wn_weight *w = &l->weights[k];
            if (k) putchar(';');
            for (int d = 0; d < w->rank; d++) printf(d ? ",%d" : "%d", w->dims[d]);
        }
        putchar('\n');
    }
    printf("total\t%d\t%zu\t%zu\n", g.n_layers, g.n_params, g.n_stats);
    wn_graph_free(&g);
    return 0;
}
